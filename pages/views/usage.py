"""Usage & costs: LLM gateway usage and spend by team, user, key and model against budgets.
Managers and admins see every team; everyone else their own requests or their team's totals.

Shared links: ``?from=YYYY-MM-DD&to=…&team=…&model=…&user=…&key=…&scope=team&group=…&by=…``
reproduce the view (dates default to this month so far)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from pages.components import (
    usage_billing,
    usage_budgets,
    usage_charts,
    usage_filters,
    usage_kpis,
    usage_tables,
)
from pages.components import usage_data as data
from pages.components.context import current_actor, settings
from pages.components.feedback import attempt, show_flash
from pages.components.guard import page_user
from services.permissions import Permission, permissions_of

INGEST_HINT = (
    "Usage arrives from the LLM gateway's logs: an administrator loads LiteLLM or Bedrock log "
    "files with `python -m services.cli usage ingest PATH_OR_S3_URI --format litellm|bedrock`, "
    "or the LiteLLM proxy writes each request here itself through the callback "
    "`services.gateway.callback.portal_usage_logger` (`litellm_settings: callbacks:` in its "
    "config)."
)

user = page_user("usage")
show_flash()
granted = permissions_of(user.roles)
sees_all = Permission.VIEW_ALL_USAGE in granted
has_team = user.team_id is not None
actor = current_actor()
url = data.db_url()

if not sees_all:
    st.caption(
        "You see your own requests"
        + (", or your team's totals (not how they split by person or key)." if has_team else ".")
    )
query = usage_filters.filter_row(actor, sees_all, has_team)
current = attempt(lambda: data.kpis(url, actor, query))
if current is None:
    st.stop()

if current.requests == 0:
    if data.any_usage(url, actor, query):
        st.info(
            "No usage in these dates"
            + (" with these filters" if query.filtered() else "")
            + ". Choose other dates or clear a filter.",
            icon=":material/search_off:",
        )
    elif sees_all:
        st.info(f"**No gateway usage yet.** {INGEST_HINT}", icon=":material/query_stats:")
    else:
        st.info(
            "**No usage to show yet.** Requests you make through the LLM gateway with a key "
            "issued to you appear here once the gateway passes its logs to the portal (its "
            "callback, or an administrator's `usage ingest`).",
            icon=":material/query_stats:",
        )
else:
    previous = attempt(lambda: data.kpis(url, actor, data.previous_period(query)))
    usage_kpis.render(current, previous, (query.end - query.start).days + 1)
    if current.unpriced_requests:
        by_model = data.grouped(url, actor, replace(query, group_by=("model",)))
        unpriced = [r["model"] for r in by_model if r["unpriced_requests"]]
        usage_kpis.unpriced_warning(current, unpriced)

    title, split_col = st.columns([3, 1.2], vertical_alignment="bottom")
    title.subheader("Spend over time", anchor=False)
    by = "model"  # one team only for everyone else
    if sees_all:
        with split_col:
            by = usage_filters.split("team")
    series = attempt(lambda: data.spend_over_time(url, actor, query, by))
    if series is not None:
        if any(r["cost_usd"] for r in series):
            chart = usage_charts.spend_chart(
                series, by, settings().report_tz, query.start, query.end
            )
            st.altair_chart(chart, width="stretch")
            st.caption(
                "The eight biggest by spend over the range; the rest are summed as “other”. "
                "Click a legend entry to highlight it. Unpriced requests are not in the bars."
            )
        else:
            st.info(
                "Nothing to chart: none of these requests has a price.",
                icon=":material/bar_chart_off:",
            )

    st.subheader("Breakdown", anchor=False)
    usage_tables.top_lists(actor, query, sees_all)
    dimensions = usage_filters.group_dimensions(sees_all, query.team_totals)
    grouping = usage_filters.group_by(dimensions, "team" if sees_all else "model")
    table_query = replace(query, group_by=grouping)
    rows = attempt(lambda: data.grouped(url, actor, table_query))
    if rows is not None:
        chosen = usage_tables.grouped_table(actor, table_query, rows)
        if chosen is not None:
            if query.team_totals:
                st.caption("Your team's totals do not open single requests; a manager can.")
            else:
                usage_tables.raw_requests(actor, table_query, chosen)

if sees_all or has_team:
    st.divider()
    usage_budgets.render(Permission.MANAGE_BUDGETS in granted, sees_all=sees_all)
if sees_all:
    st.divider()
    usage_billing.render(query.start, query.end)
