"""Property-based checks of the input edge: whatever a form or the CLI sends, validation
either accepts a clean value or raises the portal's ValidationError naming the field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.team import TeamCreate
from models.user import USERNAME_PATTERN, UserCreate
from services.errors import ValidationError
from services.validation import parse

ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=20), max_size=5),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    username=ANY_VALUE, display_name=ANY_VALUE, email=ANY_VALUE, password=ANY_VALUE, roles=ANY_VALUE
)
def test_user_form_input_is_accepted_clean_or_refused_by_field(
    username: object, display_name: object, email: object, password: object, roles: object
) -> None:
    form = {
        "username": username,
        "display_name": display_name,
        "email": email,
        "password": password,
        "roles": roles,
    }
    try:
        user = parse(UserCreate, form)
    except ValidationError as error:
        assert error.fields and set(error.fields) <= set(form)
        assert all(message for message in error.fields.values())
        return
    assert USERNAME_PATTERN.match(user.username)
    assert user.display_name == user.display_name.strip() and user.display_name
    assert len(user.password) >= 12 and len(user.password.encode()) <= 72
    for text in (user.display_name, user.password, user.email or ""):
        assert "\x00" not in text
    assert user.roles and len(set(user.roles)) == len(user.roles)


@settings(max_examples=300, deadline=None)
@given(
    name=ANY_VALUE,
    cost_center=ANY_VALUE,
    budget=st.one_of(ANY_VALUE, st.decimals(allow_nan=True, allow_infinity=True)),
)
def test_team_form_input_is_accepted_clean_or_refused_by_field(
    name: object, cost_center: object, budget: object
) -> None:
    form = {"name": name, "cost_center": cost_center, "monthly_budget": budget}
    try:
        team = parse(TeamCreate, form)
    except ValidationError as error:
        assert error.fields and set(error.fields) <= set(form)
        return
    assert team.monthly_budget >= 0 and team.monthly_budget.is_finite()
    assert -team.monthly_budget.as_tuple().exponent <= 2  # type: ignore[operator]
