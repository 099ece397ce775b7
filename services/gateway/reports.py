"""Usage and cost reports from the daily rollups (never from raw events): totals grouped by
any dimensions, KPIs, spend over time, top lists, and the raw requests behind a number.

A report that needs only day, team, model and provider reads ``usage_daily_team_model``,
whose size does not grow with traffic; anything finer reads ``usage_daily``. Grouping by tag
splits each request's tag set, so a request with two tags counts under both."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, Table, func, or_, select
from sqlmodel import Session

from models.usage import UsageDaily, UsageDailyTeamModel, UsageEvent
from services.access import Actor
from services.db import Database
from services.gateway.scope import UsageQuery, visible_query
from services.gateway.storage import COUNTERS
from services.paging import Page, clamp_page

FINE: Table = UsageDaily.__table__  # type: ignore[attr-defined]
COARSE: Table = UsageDailyTeamModel.__table__  # type: ignore[attr-defined]
EVENTS: Table = UsageEvent.__table__  # type: ignore[attr-defined]
COARSE_DIMENSIONS = {"day", "team", "model", "provider"}
COLUMN = {"day": "day", "team": "team", "user": "user", "key": "api_key_alias"}
COLUMN |= {"model": "model", "provider": "provider", "tag": "tags"}
MEASURES = COUNTERS
CSV_MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd", "unpriced_requests")


@dataclass(frozen=True)
class Kpis:
    spend: Decimal
    requests: int
    input_tokens: int
    output_tokens: int
    errors: int
    cache_hits: int
    unpriced_requests: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0

    @property
    def cost_per_request(self) -> Decimal:
        priced = self.requests - self.unpriced_requests
        return self.spend / priced if priced else Decimal(0)


def rollup_for(query: UsageQuery) -> Table:
    """The smallest rollup that holds every dimension the query groups or filters by."""
    needed = set(query.group_by) | query.filtered()
    return COARSE if needed <= COARSE_DIMENSIONS else FINE


def grouped(db: Database, *, actor: Actor, query: UsageQuery) -> list[dict[str, Any]]:
    """One row per combination of ``query.group_by``: the dimensions, then every measure and
    ``cost_usd``; biggest spend first."""
    with db.read() as session:
        query = visible_query(session, actor, query)
        return _grouped(session, query)


def kpis(db: Database, *, actor: Actor, query: UsageQuery) -> Kpis:
    with db.read() as session:
        query = visible_query(session, actor, query)
        rows = _grouped(session, _replace_group(query, ()))
    total: dict[str, Any] = rows[0] if rows else dict.fromkeys(MEASURES, 0)
    return Kpis(
        spend=total.get("cost_usd", Decimal(0)),
        requests=total["requests"],
        input_tokens=total["input_tokens"],
        output_tokens=total["output_tokens"],
        errors=total["errors"],
        cache_hits=total["cache_hits"],
        unpriced_requests=total["unpriced_requests"],
    )


def raw_requests(
    db: Database, *, actor: Actor, query: UsageQuery, page: int = 1, page_size: int = 100
) -> Page[UsageEvent]:
    """The stored requests behind a report, newest first (what a number is made of). Ordered
    by day first, so that a page is read from the day index a day at a time instead of sorting
    every request of the range (a day is the time's date in the reporting zone: same order)."""
    with db.read() as session:
        query = visible_query(session, actor, query, requests=True)
        conditions = _conditions(EVENTS, query)
        total = session.execute(select(func.count()).select_from(EVENTS).where(*conditions))
        count = int(total.scalar_one())
        page = clamp_page(page, count, page_size)
        found = session.scalars(
            select(UsageEvent)
            .where(*conditions)
            .order_by(EVENTS.c.day.desc(), EVENTS.c.occurred_at.desc(), EVENTS.c.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        return Page(list(found), count, page, page_size)


def _replace_group(query: UsageQuery, group_by: tuple[str, ...]) -> UsageQuery:
    return replace(query, group_by=group_by)


def _grouped(session: Session, query: UsageQuery) -> list[dict[str, Any]]:
    table = rollup_for(query)
    keys = [table.c[COLUMN[d]].label(d) for d in query.group_by]
    sums = [func.coalesce(func.sum(table.c[m]), 0).label(m) for m in MEASURES]
    cost = func.coalesce(func.sum(table.c.cost), 0).label("cost_usd")
    stmt = select(*keys, *sums, cost).where(*_conditions(table, query))
    if keys:
        stmt = stmt.group_by(*keys)
    rows = [dict(r._mapping) for r in session.execute(stmt)]
    if not keys and rows and rows[0]["requests"] == 0:
        rows = []
    for row in rows:
        row["cost_usd"] = Decimal(row["cost_usd"]).quantize(Decimal("0.000001"))
        for measure in MEASURES:
            row[measure] = int(row[measure])
    if "tag" in query.group_by:
        rows = _split_tags(rows, query)
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["requests"], str(r)))


def _split_tags(rows: list[dict[str, Any]], query: UsageQuery) -> list[dict[str, Any]]:
    """Rows grouped by tag set, regrouped by single tag."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    measures = (*MEASURES, "cost_usd")
    for row in rows:
        for tag in (row["tag"] or "").split(",") if row["tag"] else [""]:
            if query.tags and tag not in query.tags:
                continue
            key = tuple(tag if d == "tag" else row[d] for d in query.group_by)
            target = merged.setdefault(key, dict(zip(query.group_by, key, strict=True)))
            for measure in measures:
                target[measure] = target.get(measure, 0) + row[measure]
    return list(merged.values())


def _conditions(table: Table, query: UsageQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        table.c.day >= query.start,
        table.c.day <= query.end,
    ]
    pairs = {
        "team": query.teams,
        "user": query.users,
        "key": query.keys,
        "model": query.models,
        "provider": query.providers,
    }
    for dimension, values in pairs.items():
        if values:
            column = table.c[COLUMN[dimension]]
            named = [v for v in values if v]
            terms: list[ColumnElement[bool]] = [column.in_(named)] if named else []
            if len(named) < len(values):  # "" asks for the rows without one
                terms.append(or_(column.is_(None), column == ""))
            conditions.append(or_(*terms))
    if query.tags:
        tags = [_has_tag(table, tag) if tag else _untagged(table) for tag in query.tags]
        conditions.append(or_(*tags))
    return conditions


def _untagged(table: Table) -> ColumnElement[bool]:
    if table is EVENTS:  # a JSON list
        return table.c.tags.cast(String) == "[]"
    return table.c.tags == ""


def _has_tag(table: Table, tag: str) -> ColumnElement[bool]:
    column = table.c.tags
    if table is EVENTS:  # a JSON list: match the quoted element in its text
        return column.cast(String).contains(f'"{tag}"', autoescape=True)
    return or_(
        column == tag,
        column.startswith(f"{tag},", autoescape=True),
        column.endswith(f",{tag}", autoescape=True),
        column.contains(f",{tag},", autoescape=True),
    )


def spend_over_time(
    db: Database, *, actor: Actor, query: UsageQuery, by: str, top: int = 8
) -> list[dict[str, Any]]:
    """Daily spend per ``by`` (team or model): the ``top`` biggest over the range by name and
    the rest summed as "other", so a stacked chart stays readable."""
    rows = grouped(db, actor=actor, query=_replace_group(query, ("day", by)))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row[by]] += row["cost_usd"]
    leaders = set(sorted(totals, key=lambda k: -totals[k])[:top])
    series: dict[tuple[Any, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        name = (row[by] or "(none)") if row[by] in leaders else "other"
        series[(row["day"], name)] += row["cost_usd"]
    return [
        {"day": day, by: name, "cost_usd": cost} for (day, name), cost in sorted(series.items())
    ]
