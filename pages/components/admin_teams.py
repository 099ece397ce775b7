"""Admin page, Teams tab: create teams and edit their cost center and monthly budget."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

from models.team import TeamCreate, TeamPublic, TeamUpdate
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.formatting import local_time
from services import teams
from services.validation import parse


def render() -> None:
    _create_form()
    team_list = teams.list_teams(database())
    if not team_list:
        st.info("No teams yet. Create the first one above: teams own models and pay for usage.")
        return
    frame = pd.DataFrame(
        {
            "Team": [t.name for t in team_list],
            "Cost center": [t.cost_center or "—" for t in team_list],
            "Monthly budget": [float(t.monthly_budget) for t in team_list],
            "Members": [t.member_count for t in team_list],
            "Created": [local_time(t.created_at, settings().zone) for t in team_list],
        }
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="teams-table",
        column_config={
            "Monthly budget": st.column_config.NumberColumn(format="dollar"),
            "Members": st.column_config.NumberColumn(format="%d"),
        },
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        _edit_form(team_list[rows[0]])
    else:
        st.caption("Select a team to change its name, cost center or budget.")


def _exact(amount: float) -> Decimal:
    """The number input gives a float; budgets are kept as exact cents."""
    return Decimal(str(amount))


def _fields(prefix: str, team: TeamPublic | None = None) -> dict[str, object]:
    left, middle, right = st.columns(3)
    return {
        "name": left.text_input("Name", value=team.name if team else "", key=f"{prefix}-name"),
        "cost_center": middle.text_input(
            "Cost center",
            value=team.cost_center if team else "",
            key=f"{prefix}-cc",
            placeholder="e.g. CC-4100",
        ),
        "monthly_budget": _exact(
            right.number_input(
                "Monthly budget (USD)",
                min_value=0.0,
                step=100.0,
                format="%.2f",
                value=float(team.monthly_budget) if team else 0.0,
                key=f"{prefix}-budget",
            )
        ),
    }


def _create_form() -> None:
    with (
        st.expander("Create a team", icon=":material/group_add:"),
        st.form(form_key("create-team")),
    ):
        values = _fields(form_key("create-team"))
        if not st.form_submit_button("Create team", type="primary"):
            return
        created = attempt(
            lambda: teams.create_team(
                database(), actor=current_actor(), data=parse(TeamCreate, values)
            )
        )
    if created is not None:
        renew_form("create-team")
        flash(f"Created team {created.name}.")
        st.rerun()


def _edit_form(team: TeamPublic) -> None:
    with st.form(f"edit-team-{team.id}-{team.version}"):
        st.markdown(f"**Edit {team.name}**")
        values = _fields(f"team-{team.id}-{team.version}", team)
        if not st.form_submit_button("Save team", type="primary"):
            return
        saved = attempt(
            lambda: teams.update_team(
                database(),
                actor=current_actor(),
                team_id=team.id,
                data=parse(TeamUpdate, values),
                expected_version=team.version,
            )
        )
    if saved is not None:
        flash(f"Saved team {saved.name}.")
        st.rerun()
