"""Usage page, the headline numbers: spend, requests, tokens, error and cache-hit rates and the
average cost per request, each against the previous period of the same length; unpriced
requests called out, never counted as $0."""

from __future__ import annotations

from decimal import Decimal

import streamlit as st

from pages.components.formatting import money
from services.gateway.reports import Kpis


def _change(now: float, before: float, text: str) -> str | None:
    if before == 0:
        return None
    return f"{text} ({(now - before) / before:+.0%})"


def price(value: Decimal) -> str:
    """Money with 2 decimals, or 4 below a dollar (an average request costs cents)."""
    return money(value) if abs(value) >= 1 else f"${value:.4f}"


def _money_delta(now: Decimal, before: Decimal, had: bool) -> str | None:
    if not had:
        return None
    diff = now - before
    sign = "-" if diff < 0 else "+"
    text = f"{sign}{money(abs(diff)) if abs(diff) >= 1 else price(abs(diff))}"
    return _change(float(now), float(before), text) or text


def _count_delta(now: int, before: int, had: bool) -> str | None:
    if not had:
        return None
    text = f"{now - before:+,}"
    return _change(now, before, text) or text


def _rate_delta(now: float, before: float, had: bool) -> str | None:
    if not had:
        return None
    return f"{(now - before) * 100:+.1f} pp"


def render(current: Kpis, previous: Kpis | None, days: int) -> None:
    """Two rows of four metrics (money and volume, then tokens and rates); deltas only when
    the previous period had requests."""
    had = previous is not None and previous.requests > 0
    before = previous or current
    period = f"the previous {days} day{'s' if days != 1 else ''}"
    first = st.columns(4, gap="small")
    first[0].metric(
        "Spend",
        money(current.spend),
        _money_delta(current.spend, before.spend, had),
        delta_color="inverse",
        help=f"Priced requests only. Change against {period}.",
        border=True,
    )
    first[1].metric(
        "Cost per request",
        price(current.cost_per_request),
        _money_delta(current.cost_per_request, before.cost_per_request, had),
        delta_color="inverse",
        help="Average over priced requests.",
        border=True,
    )
    first[2].metric(
        "Requests",
        f"{current.requests:,}",
        _count_delta(current.requests, before.requests, had),
        delta_color="off",
        help=f"Change against {period}.",
        border=True,
    )
    first[3].metric(
        "Unpriced requests",
        f"{current.unpriced_requests:,}",
        help="Requests whose model has no price: counted here, not in the spend.",
        border=True,
    )
    second = st.columns(4, gap="small")
    second[0].metric(
        "Input tokens",
        f"{current.input_tokens:,}",
        _count_delta(current.input_tokens, before.input_tokens, had),
        delta_color="off",
        border=True,
    )
    second[1].metric(
        "Output tokens",
        f"{current.output_tokens:,}",
        _count_delta(current.output_tokens, before.output_tokens, had),
        delta_color="off",
        border=True,
    )
    second[2].metric(
        "Error rate",
        f"{current.error_rate:.1%}",
        _rate_delta(current.error_rate, before.error_rate, had),
        delta_color="inverse",
        help="Failed requests of all requests; pp = percentage points.",
        border=True,
    )
    second[3].metric(
        "Cache-hit rate",
        f"{current.cache_hit_rate:.1%}",
        _rate_delta(current.cache_hit_rate, before.cache_hit_rate, had),
        help="Requests answered from the gateway's cache.",
        border=True,
    )
    if not had:
        st.caption(f"No change shown: there were no requests in {period}.")


def unpriced_warning(kpis: Kpis, models: list[str]) -> None:
    """Say how many requests the spend leaves out, and which models lack a price."""
    if not kpis.unpriced_requests:
        return
    count = kpis.unpriced_requests
    names = ", ".join(f"`{m}`" for m in models[:5]) + ("…" if len(models) > 5 else "")
    text = (
        f"**{count:,} request{'s have' if count != 1 else ' has'} no price and "
        f"{'are' if count != 1 else 'is'} not in the spend.**"
    )
    if names:
        text += f" Models without a price: {names}."
    text += (
        " An administrator can give these models a price (Admin → Gateway); the stored "
        "requests are costed then too."
    )
    st.warning(text, icon=":material/money_off:")
