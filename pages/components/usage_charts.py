"""Usage page, the Altair charts: spend per day stacked by team or model, and a team's budget
burn-down. Days are reporting-time-zone dates, drawn as UTC calendar days so a browser in
another zone does not shift them; money starts at zero."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import altair as alt
import pandas as pd

from services.gateway.budgets import BurnDown

PALETTE = [  # Tableau 10: distinct, and readable on light and dark backgrounds
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
]  # fmt: skip
OTHER = "#7C8799"  # "other" and annotations: a neutral grey for both themes
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
DAY_AXIS = alt.Axis(format="%b %d", labelAngle=0, labelOverlap=True)
MONEY_AXIS = alt.Axis(format="$,.2f")


def _day(value: date) -> str:
    return value.isoformat()  # "2026-11-02": Vega reads a date-only ISO string as UTC midnight


def spend_chart(
    rows: list[dict[str, Any]], by: str, zone: str, start: date, end: date
) -> alt.Chart:
    """Stacked daily bars over the whole range ``start``–``end`` (days without spend stay
    empty), biggest series at the bottom, "other" on top in grey; clicking a legend entry
    highlights that series."""
    frame = pd.DataFrame(
        {
            "day": [_day(r["day"]) for r in rows],
            "series": [str(r[by]) for r in rows],
            "cost": [float(r["cost_usd"]) for r in rows],
        }
    )
    totals = frame.groupby("series")["cost"].sum().sort_values(ascending=False)
    order = [s for s in totals.index if s != "other"] + (["other"] if "other" in totals else [])
    colours = [OTHER if s == "other" else PALETTE[i % len(PALETTE)] for i, s in enumerate(order)]
    frame["rank"] = frame["series"].map({s: i for i, s in enumerate(order)})
    title = "Team" if by == "team" else "Model"
    pick = alt.selection_point(fields=["series"], bind="legend")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "utcyearmonthdate(day):T",
                title=f"Day ({zone})",
                axis=DAY_AXIS,
                scale=alt.Scale(domain=[_day(start), _day(end + timedelta(days=1))]),
            ),
            y=alt.Y(
                "sum(cost):Q", title="Spend (USD)", axis=MONEY_AXIS, scale=alt.Scale(zero=True)
            ),
            color=alt.Color(
                "series:N",
                title=title,
                scale=alt.Scale(domain=order, range=colours),
                legend=alt.Legend(orient="right", labelLimit=220, symbolLimit=12),
            ),
            order=alt.Order("rank:Q", sort="ascending"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.25)),
            tooltip=[
                alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%Y-%m-%d"),
                alt.Tooltip("series:N", title=title),
                alt.Tooltip("sum(cost):Q", title="Spend", format="$,.2f"),
            ],
        )
        .add_params(pick)
        .properties(height=300, autosize=FIT_WIDTH)
    )


def burn_down_chart(chart: BurnDown, zone: str) -> alt.LayerChart:
    """Cumulative spend so far (solid), the forecast to the period's end (dashed) and the
    budget with its warning levels (horizontal rules)."""
    status = chart.status
    spent = pd.DataFrame(
        {
            "day": [_day(d) for d in chart.days],
            "cost": [float(c) for c in chart.cumulative],
            "line": "Spent so far",
        }
    )
    ahead = pd.DataFrame(
        {
            "day": [_day(d) for d, _ in chart.forecast],
            "cost": [float(c) for _, c in chart.forecast],
            "line": "Forecast",
        }
    )
    levels = pd.DataFrame(
        {
            "cost": [float(status.amount * Decimal(level) / 100) for level in status.levels],
            "label": [f"{level}% of budget" for level in status.levels],
        }
    )
    x = alt.X(
        "utcyearmonthdate(day):T",
        title=f"Day ({zone})",
        axis=DAY_AXIS,
        scale=alt.Scale(domain=[_day(status.start), _day(status.end)]),
    )
    y = alt.Y("cost:Q", title="Cumulative spend (USD)", axis=MONEY_AXIS, scale=alt.Scale(zero=True))
    tooltip = [
        alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%Y-%m-%d"),
        alt.Tooltip("line:N", title="Line"),
        alt.Tooltip("cost:Q", title="Cumulative", format="$,.2f"),
    ]
    colour = alt.Color(
        "line:N",
        title=None,
        scale=alt.Scale(domain=["Spent so far", "Forecast"], range=[PALETTE[0], PALETTE[1]]),
        legend=alt.Legend(orient="top"),
    )
    actual = (
        alt.Chart(spent)
        .mark_line(point=alt.OverlayMarkDef(size=24))
        .encode(x=x, y=y, color=colour, tooltip=tooltip)
    )
    forecast = (
        alt.Chart(ahead)
        .mark_line(strokeDash=[6, 4], point=alt.OverlayMarkDef(size=24, filled=False))
        .encode(x=x, y=y, color=colour, tooltip=tooltip)
    )
    rules = (
        alt.Chart(levels)
        .mark_rule(color=OTHER, strokeDash=[2, 2])
        .encode(
            y="cost:Q",
            size=alt.value(1),
            tooltip=[
                alt.Tooltip("label:N", title="Level"),
                alt.Tooltip("cost:Q", title="Amount", format="$,.2f"),
            ],
        )
    )
    budget = (
        alt.Chart(pd.DataFrame({"cost": [float(status.amount)], "label": ["Budget"]}))
        .mark_rule(color=PALETTE[2], size=2)
        .encode(
            y="cost:Q",
            tooltip=[
                alt.Tooltip("label:N", title="Line"),
                alt.Tooltip("cost:Q", title="Amount", format="$,.2f"),
            ],
        )
    )
    return alt.LayerChart(layer=[rules, budget, actual, forecast]).properties(
        height=280, autosize=FIT_WIDTH
    )
