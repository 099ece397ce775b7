"""Admin page, Users tab: create users, set roles and team, disable, unlock, reset passwords."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from models.team import TeamPublic
from models.types import utcnow
from models.user import Role, UserCreate, UserPublic, UserUpdate
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, passwords_match, renew_form
from pages.components.formatting import local_time, role_labels, table_height
from services import teams, users
from services.validation import parse

ROLE_OPTIONS = [r.value for r in Role]
NO_TEAM = "— no team —"


def _status(user: UserPublic) -> str:
    if user.disabled:
        return "Disabled"
    if user.is_locked(utcnow()) and user.locked_until is not None:
        return f"Locked until {user.locked_until.astimezone(settings().zone):%H:%M}"
    return "Active"


def _team_choice(team_list: list[TeamPublic], current: int | None) -> tuple[list[str], int]:
    names = [NO_TEAM] + [t.name for t in team_list]
    ids = [None] + [t.id for t in team_list]
    return names, ids.index(current) if current in ids else 0


def _team_id(team_list: list[TeamPublic], name: str) -> int | None:
    return next((t.id for t in team_list if t.name == name), None)


def render() -> None:
    team_list = teams.list_teams(database())
    _create_form(team_list)
    search = st.text_input(
        "Search users",
        placeholder="Username, name or email",
        key="user-search",
        label_visibility="collapsed",
    )
    people = attempt(lambda: users.list_users(database(), actor=current_actor(), search=search))
    if people is None:
        return
    if not people:
        st.info("No user matches this search." if search else "No users yet. Create one above.")
        return
    selected = _table(people)
    if selected is not None:
        _details(selected, team_list)


def _create_form(team_list: list[TeamPublic]) -> None:
    with (
        st.expander("Create a user", icon=":material/person_add:"),
        st.form(form_key("create-user")),
    ):
        left, right = st.columns(2)
        username = left.text_input("Username", placeholder="e.g. jane.doe")
        display_name = right.text_input("Full name")
        email = left.text_input("Email (optional)")
        names, _ = _team_choice(team_list, None)
        team = right.selectbox("Team", names)
        roles = st.multiselect(
            "Roles",
            ROLE_OPTIONS,
            default=[Role.DATA_SCIENTIST.value],
            format_func=lambda r: Role(r).label,
        )
        left, right = st.columns(2)
        password = left.text_input(
            "Initial password", type="password", help="At least 12 characters."
        )
        confirm = right.text_input("Repeat the password", type="password")
        if not st.form_submit_button("Create user", type="primary"):
            return
        if not passwords_match(password, confirm):
            return
        form = {
            "username": username,
            "display_name": display_name,
            "email": email,
            "roles": roles,
            "password": password,
            "team_id": _team_id(team_list, team),
        }
        created = attempt(
            lambda: users.create_user(
                database(), actor=current_actor(), data=parse(UserCreate, form)
            )
        )
        if created is None:
            return
    renew_form("create-user")
    flash(f"Created user {created.username}.")
    st.query_params["user"] = created.username
    st.rerun()


def _table(people: list[UserPublic]) -> UserPublic | None:
    zone = settings().zone
    frame = pd.DataFrame(
        {
            "Username": [u.username for u in people],
            "Name": [u.display_name for u in people],
            "Roles": [role_labels(u.roles) for u in people],
            "Team": [u.team_name or "—" for u in people],
            "Status": [_status(u) for u in people],
            "Last login": [local_time(u.last_login_at, zone) for u in people],
            "Email": [u.email or "" for u in people],
        }
    )
    wanted = st.query_params.get("user")
    default_rows = [i for i, u in enumerate(people) if u.username == wanted]
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        selection_default={"selection": {"rows": default_rows, "columns": []}}
        if default_rows
        else None,
        # Keyed by the user in the URL: Streamlit applies a default selection only when a table
        # is first drawn, so a new key is what lets "?user=" (a shared link, a just-created
        # user) select its row.
        key=f"users-table-{wanted or ''}",
        height=table_height(len(people)),
        column_config={
            "Roles": st.column_config.TextColumn(width="medium"),
            "Email": st.column_config.TextColumn(width="medium"),
        },
    )
    rows = event.selection.rows if event is not None else []
    if not rows:
        if default_rows:  # the user cleared the selection the URL had made
            del st.query_params["user"]
        st.caption(
            "Select a user to edit their roles and team, disable them or reset their password."
        )
        return None
    user = people[rows[0]]
    st.query_params["user"] = user.username
    return user


def _details(user: UserPublic, team_list: list[TeamPublic]) -> None:
    st.subheader(f"{user.display_name} ({user.username})", anchor=False)
    st.caption(f"Status: {_status(user)} · created {local_time(user.created_at, settings().zone)}")
    edit, actions = st.columns([3, 2], gap="large")
    with edit:
        _edit_form(user, team_list)
    with actions:
        _account_actions(user)
        _reset_password_form(user)


def _edit_form(user: UserPublic, team_list: list[TeamPublic]) -> None:
    with st.form(f"edit-user-{user.id}-{user.version}"):
        st.markdown("**Profile, roles and team**")
        display_name = st.text_input("Full name", value=user.display_name)
        email = st.text_input("Email", value=user.email or "")
        roles = st.multiselect(
            "Roles", ROLE_OPTIONS, default=user.roles, format_func=lambda r: Role(r).label
        )
        names, index = _team_choice(team_list, user.team_id)
        team = st.selectbox("Team", names, index=index)
        if not st.form_submit_button("Save changes", type="primary"):
            return
        team_id = _team_id(team_list, team)
        form = {
            "display_name": display_name,
            "email": email,
            "roles": roles,
            "team_id": team_id,
            "clear_team": team_id is None,
        }
        saved = attempt(
            lambda: users.update_user(
                database(),
                actor=current_actor(),
                user_id=user.id,
                changes=parse(UserUpdate, form),
                expected_version=user.version,
            )
        )
        if saved is None:
            return
    flash(f"Saved changes to {user.username}.")
    st.rerun()


def _account_actions(user: UserPublic) -> None:
    st.markdown("**Account**")
    if user.failed_login_count or user.is_locked(utcnow()):
        st.caption(f"{user.failed_login_count} failed login(s) in a row.")
        if st.button("Unlock account", icon=":material/lock_open:", key=f"unlock-{user.id}"):
            unlocked = attempt(
                lambda: users.unlock(database(), actor=current_actor(), user_id=user.id)
            )
            if unlocked is not None:
                flash(f"Unlocked {user.username}.")
                st.rerun()
    if user.id == current_actor().user_id:
        st.caption("This is your own account: another administrator must disable it.")
        return
    confirm_key = f"confirm-disable-{user.id}"
    verb = "Enable" if user.disabled else "Disable"
    if not st.session_state.get(confirm_key):
        if st.button(f"{verb} account…", icon=":material/person_off:", key=f"toggle-{user.id}"):
            st.session_state[confirm_key] = True
            st.rerun()
        return
    consequence = (
        "They will be able to log in again."
        if user.disabled
        else "They are logged out at their next click and cannot log in."
    )
    st.warning(f"{verb} **{user.username}**? {consequence}")
    yes, no = st.columns(2)
    if yes.button(f"Yes, {verb.lower()}", type="primary", key=f"yes-{user.id}"):
        st.session_state.pop(confirm_key, None)
        done = attempt(
            lambda: users.set_disabled(
                database(),
                actor=current_actor(),
                user_id=user.id,
                disabled=not user.disabled,
                expected_version=user.version,
            )
        )
        if done is not None:
            flash(f"{verb}d {user.username}.")
            st.rerun()
    if no.button("Cancel", key=f"no-{user.id}"):
        st.session_state.pop(confirm_key, None)
        st.rerun()


def _reset_password_form(user: UserPublic) -> None:
    with st.form(f"reset-password-{user.id}", clear_on_submit=True):
        st.markdown("**Reset password**")
        new = st.text_input("New password", type="password", help="At least 12 characters.")
        confirm = st.text_input("Repeat the new password", type="password")
        if not st.form_submit_button("Reset password"):
            return
        if not passwords_match(new, confirm):
            return
        done = attempt(
            lambda: users.reset_password(
                database(), actor=current_actor(), user_id=user.id, new_password=new
            )
        )
    if done is not None:
        flash(f"Reset the password of {user.username}; their open sessions have ended.")
        st.rerun()
