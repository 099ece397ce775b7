"""Usage page, budgets: every visible team's budget this month (and custom periods running
today) with how much is used, the month-end forecast and the warning level crossed; a team's
burn-down; managers set a monthly budget or add one for a custom period. Also the "Teams at
risk" panel of managers' Home page."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from models.team import TeamPublic
from pages.components import usage_charts
from pages.components import usage_data as data
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form, show_error
from pages.components.formatting import local_time, money, table_height
from pages.components.layout import internal_link
from services import teams
from services.errors import ValidationError
from services.gateway import budget_admin, budget_alerts
from services.gateway.budgets import BudgetStatus, month_of


def level_text(status: BudgetStatus) -> str:
    return f"{status.crossed}% reached" if status.crossed is not None else "—"


def budgets_table(found: list[BudgetStatus]) -> None:
    shown = pd.DataFrame(
        {
            "Team": [s.team for s in found],
            "Period": [s.period for s in found],
            "Budget (USD)": [float(s.amount) for s in found],
            "Spent (USD)": [float(s.spent) for s in found],
            "Used": [s.used for s in found],
            "Forecast (USD)": [float(s.forecast) for s in found],
            "Forecast used": [s.forecast_used for s in found],
            "Warning": [level_text(s) for s in found],
            "At risk": ["⚠️ at risk" if s.at_risk else "" for s in found],
            "Unpriced": [s.unpriced_requests for s in found],
        }
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=table_height(len(shown), max_rows=15),
        column_config={
            "Budget (USD)": st.column_config.NumberColumn(format="dollar"),
            "Spent (USD)": st.column_config.NumberColumn(format="dollar"),
            "Used": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0, help="Spent of the budget so far"
            ),
            "Forecast (USD)": st.column_config.NumberColumn(
                format="dollar", help="Spend by the period's end at the last week's daily rate"
            ),
            "Forecast used": st.column_config.NumberColumn(format="percent"),
            "Warning": st.column_config.TextColumn(help="The highest warning level reached"),
            "Unpriced": st.column_config.NumberColumn(
                format="localized", help="Requests without a price: not in the spent amount"
            ),
        },
    )


def render(can_manage: bool, *, sees_all: bool) -> None:
    st.subheader("Budgets", anchor=False)
    actor = current_actor()
    today = data.today()
    found = attempt(lambda: data.team_budgets(data.db_url(), actor, today))
    if found is None:
        return
    st.caption(
        f"This month and custom periods running today ({today:%B %d}); independent of the "
        "dates above. Forecasts extrapolate the last week's daily spend."
    )
    choices = attempt(lambda: teams.list_teams(database())) if can_manage else None
    if not found:
        if not can_manage:
            hint = " A manager can set one."
        elif choices:
            hint = " Set one with the form below."
        else:  # the forms need a team of the portal to hold the budget
            hint = (
                " Budgets belong to the portal's teams, and there are none yet: an "
                "administrator creates them under Admin → Teams."
            )
        st.info(
            "No team you can see has a budget yet." + hint,
            icon=":material/account_balance_wallet:",
        )
    else:
        budgets_table(found)
        if any(s.unpriced_requests for s in found):
            st.caption("Unpriced requests are not in the spent amounts.")
        _burn_down(found, month_of(today))
    if sees_all:
        _alerts()
    if choices:
        _forms(choices)


ALERT_STATUS = {
    "pending": "waiting",
    "sending": "sending",
    "sent": "sent",
    "failed": "failed: tried again at the next check",
    "superseded": "skipped: a higher level was told",
}


def _alerts() -> None:
    """What the budget alert webhook was told (managers and admins)."""
    configured = bool(settings().budget_webhook_url)
    found = attempt(lambda: budget_alerts.recent_alerts(database(), actor=current_actor()))
    if found is None:
        return
    title = f"Budget alerts ({len(found)})" if found else "Budget alerts"
    with st.expander(title, icon=":material/notifications:"):
        if not configured:
            st.caption(
                "Off. An administrator sets PORTAL_BUDGET_WEBHOOK_URL and "
                "PORTAL_BUDGET_WEBHOOK_SECRET to have each warning level a team crosses "
                "posted once to a webhook (checked after every `usage ingest` and by "
                "`usage alerts`)."
            )
        if not found:
            if configured:
                st.caption("No team has crossed a warning level since alerts were turned on.")
            return
        zone = settings().zone
        columns = {
            "Team": [a.team for a in found],
            "Period": [a.period for a in found],
            "Level": [f"{a.level}%" for a in found],
            "Spent (USD)": [float(a.spent) for a in found],
            "Budget (USD)": [float(a.amount) for a in found],
            "Status": [ALERT_STATUS.get(a.status, a.status) for a in found],
            "When": [local_time(a.sent_at or a.crossed_at, zone) for a in found],
        }
        if any(a.last_error for a in found):
            columns["Last error"] = [a.last_error or "" for a in found]
        shown = pd.DataFrame(columns)
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=table_height(len(shown), max_rows=10),
            column_config={
                "Spent (USD)": st.column_config.NumberColumn(format="dollar"),
                "Budget (USD)": st.column_config.NumberColumn(format="dollar"),
            },
        )


def _burn_down(found: list[BudgetStatus], month: tuple[date, date]) -> None:
    """A burn-down chart of one budget running today: a team's monthly one or a custom
    period's (``?budget_team=…&budget_period=…`` keeps the choice in the address)."""
    if not found:
        return
    choices = {(s.team, None if (s.start, s.end) == month else s.period): s for s in found}
    keys = list(choices)
    wanted = (st.query_params.get("budget_team"), st.query_params.get("budget_period"))
    picked = st.columns([1, 2])[0].selectbox(
        "Burn-down of",
        keys,
        index=keys.index(wanted) if wanted in choices else 0,
        format_func=lambda key: f"{key[0]} · {choices[key].period}",
        help="Cumulative spend against the budget, and the forecast to the period's end",
    )
    team, period = picked
    if picked != keys[0]:
        st.query_params["budget_team"] = team
        if period:
            st.query_params["budget_period"] = period
        else:
            st.query_params.pop("budget_period", None)
    else:
        st.query_params.pop("budget_team", None)
        st.query_params.pop("budget_period", None)
    chart = attempt(
        lambda: data.burn_down(data.db_url(), current_actor(), team, period, data.today())
    )
    if chart is None:
        return
    status = chart.status
    st.altair_chart(usage_charts.burn_down_chart(chart, settings().report_tz), width="stretch")
    st.caption(
        f"{team}, {status.period}: {money(status.spent)} of {money(status.amount)} spent "
        f"({status.used:.0%}); forecast {money(status.forecast)} by {status.end:%B %d} "
        f"({status.forecast_used:.0%})."
    )


def _forms(choices: list[TeamPublic]) -> None:
    by_id = {t.id: t for t in choices}
    left, right = st.columns(2)
    with left, st.form(form_key("usage-monthly-budget")):
        st.markdown("**Set a team's monthly budget**")
        team_id = st.selectbox(
            "Team", list(by_id), format_func=lambda i: f"{by_id[i].name} (now "
            f"{money(by_id[i].monthly_budget)})", key="monthly-team",
        )  # fmt: skip
        amount = st.text_input("Monthly budget (USD)", placeholder="5000", help="0: no budget")
        if st.form_submit_button("Set monthly budget", type="primary"):
            _set_monthly(team_id, amount, by_id[team_id].name)
    with right, st.form(form_key("usage-custom-budget")):
        st.markdown("**Add a budget for a custom period**")
        custom_team = st.selectbox(
            "Team", list(by_id), format_func=lambda i: by_id[i].name, key="custom-team"
        )
        name = st.text_input("Name", placeholder="Q4 launch")
        today = data.today()
        start, end = st.columns(2)
        first = start.date_input("From", value=today, format="YYYY-MM-DD")
        last = end.date_input("To", value=today + timedelta(days=89), format="YYYY-MM-DD")
        amount_text = st.text_input("Amount (USD)", placeholder="20000")
        warn = st.text_input("Warn at (%)", value="80, 90, 100")
        if st.form_submit_button("Add budget"):
            _add_custom(custom_team, name, first, last, amount_text, warn, by_id[custom_team].name)


def _set_monthly(team_id: int, amount: str, team: str) -> None:
    result = attempt(
        lambda: budget_admin.set_monthly_budget(
            database(), actor=current_actor(), team_id=team_id, amount=amount.strip()
        )
    )
    if result is not None:
        data.forget_budgets()
        renew_form("usage-monthly-budget")
        flash(f"Monthly budget of {team} set to {money(result.monthly_budget)}.")
        st.rerun()


def _add_custom(
    team_id: int, name: str, first: date, last: date, amount: str, warn: str, team: str
) -> None:
    try:
        levels = [int(p) for p in warn.replace(" ", "").split(",") if p]
    except ValueError:
        show_error(ValidationError("Warn at: whole percentages separated by commas."))
        return
    budget = attempt(
        lambda: budget_admin.add_budget(
            database(), actor=current_actor(), team_id=team_id, name=name, start=first,
            end=last, amount=amount.strip(), warn_at=levels,
        )
    )  # fmt: skip
    if budget is not None:
        data.forget_budgets()
        renew_form("usage-custom-budget")
        flash(f"Budget {budget.name!r} of {team} added: {money(budget.amount)}.")
        st.rerun()


def at_risk_panel() -> None:
    """Home for managers: the teams over a warning level or heading over budget."""
    st.markdown("#### Teams at risk")
    found = attempt(lambda: data.team_budgets(data.db_url(), current_actor(), data.today()))
    if found is None:
        return
    risky = [s for s in found if s.at_risk]
    if not found:
        st.info("No team has a budget yet.", icon=":material/account_balance_wallet:")
    elif not risky:
        st.success(
            f"All {len(found)} budgets are on track this month.", icon=":material/check_circle:"
        )
    for s in risky:
        with st.container(border=True):
            level = f" · **{s.crossed}% warning reached**" if s.crossed is not None else ""
            st.markdown(
                f":material/warning: **{s.team}** ({s.period}): {money(s.spent)} of "
                f"{money(s.amount)} spent ({s.used:.0%}){level}  \n"
                f"Forecast {money(s.forecast)} by {s.end:%B %d} ({s.forecast_used:.0%} of budget)"
            )
    internal_link("/usage", "Open Usage & costs", icon=":material/arrow_forward:")
