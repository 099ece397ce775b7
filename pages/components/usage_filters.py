"""Usage page, the filters: dates, teams, models (and users and keys for those who see every
team), "mine" or "my team's totals" for everyone else, the group-by and the chart's split.
All of it mirrored into the URL (``?from=…&to=…&team=…&model=…&group=…&by=…``) so a copied
link reopens the same view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import streamlit as st

from pages.components import usage_data as data
from services.access import Actor
from services.gateway.budgets import month_of
from services.gateway.scope import DIMENSIONS, UsageQuery

LABELS = {
    "day": "Day",
    "team": "Team",
    "user": "User",
    "key": "API key",
    "model": "Model",
    "provider": "Provider",
    "tag": "Tag",
}
SCOPES = {"mine": "My requests", "team": "My team's totals"}
SPLITS = {"team": "By team", "model": "By model"}
FILTERS = (("team", "Teams"), ("model", "Models"), ("user", "Users"), ("key", "API keys"))
PLACEHOLDERS = {"team": "All teams", "model": "All models", "user": "All users", "key": "All keys"}
SYNCED = "usage-synced"  # what this session last wrote into the URL, per parameter


def _date(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _span(start: date, end: date, today: date) -> tuple[date, date]:
    """A range the date picker accepts: not past today, not ending before it starts."""
    end = min(end, today)
    return min(start, end), end


def _bind(name: str, url_value: Any, parse: Callable[[Any], Any]) -> str:
    """The widget key for URL parameter ``name``, (re)loaded from the URL when the URL says
    something this session did not write (a pasted link, a link from another page)."""
    key = f"usage-{name}"
    synced: dict[str, Any] = st.session_state.setdefault(SYNCED, {})
    if key not in st.session_state or synced.get(name) != url_value:
        st.session_state[key] = parse(url_value)
        synced[name] = url_value
    return key


def _mirror(name: str, value: str | list[str], default: str | list[str] = "") -> None:
    synced: dict[str, Any] = st.session_state.setdefault(SYNCED, {})
    if value and value != default:
        st.query_params[name] = value
    else:
        st.query_params.pop(name, None)
    synced[name] = _url(name, isinstance(value, list))


def _url(name: str, many: bool) -> Any:
    return st.query_params.get_all(name) if many else st.query_params.get(name)


def _options(actor: Actor, query: UsageQuery, dimension: str, chosen: Sequence[str]) -> list[str]:
    """The values of ``dimension`` in the range (what the viewer may see), plus those chosen."""
    probe = UsageQuery(
        start=query.start, end=query.end, group_by=(dimension,), team_totals=query.team_totals
    )
    try:
        rows = data.grouped(data.db_url(), actor, probe)
    except Exception:  # the report itself shows the error; the filter just offers less
        rows = []
    return sorted({str(r[dimension]) for r in rows if r[dimension]} | set(chosen))


def filter_row(actor: Actor, sees_all: bool, has_team: bool) -> UsageQuery:
    """Draw the filter row and return the query it describes (group-by added by the caller)."""
    today = data.today()
    first, _ = month_of(today)
    if sees_all:
        cols = st.columns([2.1, 1.3, 1.3, 1.3, 1.3])
    else:
        cols = st.columns([2.1, 1.5, 2.6] if has_team else [2.1, 4.1])
    span_key = _bind(
        "range",
        (st.query_params.get("from"), st.query_params.get("to")),
        lambda v: _span(_date(v[0], first), _date(v[1], today), today),
    )
    span = cols[0].date_input("Dates", key=span_key, max_value=today, format="YYYY-MM-DD")
    if isinstance(span, tuple) and len(span) == 2:
        start, end = span
    else:  # the second date is still being picked: keep the range in the URL
        start = _date(st.query_params.get("from"), first)
        end = _date(st.query_params.get("to"), today)
    _mirror("from", start.isoformat(), first.isoformat())
    _mirror("to", end.isoformat(), today.isoformat())

    team_totals = False
    if not sees_all and has_team:
        scope_key = _bind("scope", st.query_params.get("scope"), lambda v: v or "mine")
        scope = cols[1].segmented_control(
            "Show", list(SCOPES), key=scope_key, format_func=SCOPES.__getitem__
        )
        team_totals = scope == "team"
        _mirror("scope", "team" if team_totals else "")
    base = UsageQuery(start=start, end=end, team_totals=team_totals)

    chosen: dict[str, tuple[str, ...]] = {}
    shown = FILTERS if sees_all else FILTERS[1:2]
    slots = cols[1:] if sees_all else cols[-1:]
    for (name, label), slot in zip(shown, slots, strict=True):
        key = _bind(name, st.query_params.get_all(name), list)
        options = _options(actor, base, name, st.session_state[key])
        picked = slot.multiselect(label, options, key=key, placeholder=PLACEHOLDERS[name])
        _mirror(name, list(picked))
        chosen[name] = tuple(picked)
    return UsageQuery(
        start=start,
        end=end,
        teams=chosen.get("team", ()),
        models=chosen.get("model", ()),
        users=chosen.get("user", ()),
        keys=chosen.get("key", ()),
        team_totals=team_totals,
    )


def group_dimensions(sees_all: bool, team_totals: bool) -> list[str]:
    """What the viewer may group by: not by person or key when looking at team totals."""
    if team_totals:
        return [d for d in DIMENSIONS if d not in ("user", "key")]
    if sees_all:
        return list(DIMENSIONS)
    return [d for d in DIMENSIONS if d != "user"]  # it is always the viewer


def group_by(options: list[str], default: str) -> tuple[str, ...]:
    """The grouped table's dimensions (``?group=team&group=model``)."""
    key = _bind(
        "group",
        st.query_params.get_all("group"),
        lambda v: [d for d in v if d in options] or [default],
    )
    st.session_state[key] = [d for d in st.session_state[key] if d in options] or [default]
    picked = st.multiselect(
        "Group by", options, key=key, format_func=LABELS.__getitem__, max_selections=4
    )
    _mirror("group", list(picked), [default])
    return tuple(picked) or (default,)


def split(default: str) -> str:
    """Whether the spend chart stacks teams or models (``?by=model``)."""
    key = _bind("by", st.query_params.get("by"), lambda v: v if v in SPLITS else default)
    chosen = st.segmented_control(
        "Split", list(SPLITS), key=key, format_func=SPLITS.__getitem__,
        label_visibility="collapsed",
    )  # fmt: skip
    by = chosen or default
    _mirror("by", by, default)
    return by
