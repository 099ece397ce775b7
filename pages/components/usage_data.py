"""Usage page, the reads: the gateway report services behind short-lived caches (the rollups
change only when logs are ingested), keyed by the database and the acting user, and the
raw requests as plain rows for tables and CSV."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import streamlit as st

from pages.components.context import database, settings
from pages.components.formatting import local_time
from services.access import Actor
from services.gateway import budgets, reports
from services.gateway.budgets import BudgetStatus, BurnDown
from services.gateway.reports import Kpis
from services.gateway.scope import MAX_DAYS, UsageQuery
from services.paging import Page

TTL = 60  # seconds: new logs show up within a minute of their ingest


def db_url() -> str:
    return settings().resolved_database_url


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def grouped(url: str, actor: Actor, query: UsageQuery) -> list[dict[str, Any]]:
    return reports.grouped(database(), actor=actor, query=query)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=128)
def kpis(url: str, actor: Actor, query: UsageQuery) -> Kpis:
    return reports.kpis(database(), actor=actor, query=query)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=128)
def spend_over_time(url: str, actor: Actor, query: UsageQuery, by: str) -> list[dict[str, Any]]:
    return reports.spend_over_time(database(), actor=actor, query=query, by=by)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def team_budgets(url: str, actor: Actor, today: date) -> list[BudgetStatus]:
    return budgets.team_budgets(database(), settings(), actor=actor, today=today)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def burn_down(
    url: str, actor: Actor, team: str, period: str | None, today: date
) -> BurnDown | None:
    return budgets.burn_down(
        database(), settings(), actor=actor, team=team, period=period, today=today
    )


def forget_budgets() -> None:
    """After a budget changed: the next run reads the new amounts."""
    team_budgets.clear()
    burn_down.clear()


def today() -> date:
    return budgets.today_in(settings())


def previous_period(query: UsageQuery) -> UsageQuery:
    """The same number of days just before ``query``'s range, for the KPI deltas."""
    length = (query.end - query.start).days + 1
    end = query.start - timedelta(days=1)
    return replace(query, start=end - timedelta(days=length - 1), end=end)


def any_usage(url: str, actor: Actor, query: UsageQuery) -> bool:
    """Whether the viewer has any usage at all in the longest range a report allows (to tell
    "nothing yet" from "nothing in this range")."""
    end = today()
    wide = UsageQuery(
        start=end - timedelta(days=MAX_DAYS - 1), end=end, group_by=(),
        team_totals=query.team_totals,
    )  # fmt: skip
    return kpis(url, actor, wide).requests > 0


def raw_rows(found: Page[Any]) -> list[dict[str, Any]]:
    """Raw request events as table rows: local times, names, tokens and cost (None when the
    request has no price)."""
    zone = settings().zone
    return [
        {
            "time": local_time(e.occurred_at, zone),
            "user": e.user,
            "team": e.team,
            "key": e.api_key_alias,
            "model": e.model,
            "provider": e.provider,
            "status": e.status,
            "error": e.error or "",
            "cache_hit": e.cache_hit,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "cost_usd": e.cost if e.priced else None,
            "tags": ", ".join(e.tags),
            "request_id": e.request_id,
            "source": e.source,
        }
        for e in found.rows
    ]


def as_float(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def raw_page(
    url: str, actor: Actor, query: UsageQuery, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int, int, int]:
    """One page of the raw requests behind ``query``: rows, total, page, pages."""
    found = reports.raw_requests(
        database(), actor=actor, query=query, page=page, page_size=page_size
    )
    return raw_rows(found), found.total, found.page, found.pages
