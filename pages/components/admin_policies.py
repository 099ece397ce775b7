"""Admin page, Policies tab: the promotion policy in force for each target stage, the form that
saves a new revision of it (approvals, who approves, metric gates, the PII rule, expiry) and
the revisions so far. Requests keep the revision they were judged under."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from models.promotion import (
    APPROVER_ROLES,
    PolicyUpdate,
    PromotionPolicy,
)
from models.user import Role
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, show_error
from pages.components.formatting import local_time, table_height
from services import promotions
from services.errors import ValidationError
from services.promotions.policies import describe, parse_gates
from services.validation import parse

ROLE_NOTES = {
    Role.APPROVER.value: "Approver",
    Role.DATA_SCIENTIST.value: "Data scientist (peer review)",
}


def render() -> None:
    policies = attempt(lambda: promotions.current_policies(database(), actor=current_actor()))
    if policies is None:
        return
    st.caption(
        "Each save adds a revision. Requests already filed keep the revision they were judged "
        "under; new requests use the newest one. The requester never approves their own request."
    )
    tabs = st.tabs([stage.capitalize() for stage in policies])
    for tab, (stage, policy) in zip(tabs, policies.items(), strict=True):
        with tab:
            st.markdown(f"**In force: revision {policy.revision}**  \n{describe(policy)}")
            _form(stage, policy)
            _history(stage)


def _form(stage: str, policy: PromotionPolicy) -> None:
    key = f"{stage}-{policy.revision}"  # a saved revision redraws the form from the new one
    with st.form(f"policy-form-{key}"):
        left, right = st.columns(2)
        approvals = left.number_input(
            "Required approvals",
            min_value=1,
            max_value=10,
            value=policy.required_approvals,
            key=f"policy-approvals-{key}",
        )
        role = right.selectbox(
            "Approved by",
            list(APPROVER_ROLES),
            index=list(APPROVER_ROLES).index(policy.approver_role)
            if policy.approver_role in APPROVER_ROLES
            else 0,
            format_func=ROLE_NOTES.__getitem__,
            key=f"policy-role-{key}",
        )
        gates_text = st.text_area(
            "Metric gates",
            value="\n".join(g.describe() for g in policy.gates()),
            placeholder="eval_loss < 1.2\naccuracy >= 0.8",
            help="One gate per line: metric, operator (< <= > >=), threshold. A version is "
            "put forward only when every gate passes; a missing metric fails.",
            key=f"policy-gates-{key}",
        )
        left, right = st.columns(2)
        block_pii = left.checkbox(
            "Block PII-flagged training data",
            value=policy.block_pii,
            help="An approver's recorded PII exception on the dataset version clears the flag.",
            key=f"policy-pii-{key}",
        )
        expiry = right.number_input(
            "Days until a pending request expires (0 = never)",
            min_value=0,
            max_value=365,
            value=policy.expiry_days or 0,
            key=f"policy-expiry-{key}",
        )
        if not st.form_submit_button(f"Save {stage} policy", type="primary"):
            return
        try:
            update = parse(
                PolicyUpdate,
                {
                    "required_approvals": int(approvals),
                    "approver_role": str(role),
                    "metric_gates": parse_gates(gates_text),
                    "block_pii": block_pii,
                    "expiry_days": int(expiry) or None,
                },
            )
        except ValidationError as error:
            show_error(error)
            return
        saved = attempt(
            lambda: promotions.save_policy(
                database(), actor=current_actor(), target_stage=stage, update=update
            )
        )
    if saved is not None:
        flash(f"Saved {stage} policy revision {saved.revision}: {describe(saved)}.")
        st.rerun()


def _history(stage: str) -> None:
    revisions = attempt(
        lambda: promotions.policy_history(database(), actor=current_actor(), target_stage=stage)
    )
    if not revisions:
        return
    zone = settings().zone
    with st.expander(f"Revision history ({len(revisions)})", icon=":material/history:"):
        st.dataframe(
            pd.DataFrame(
                {
                    "Revision": [p.revision for p in revisions],
                    "Saved": [local_time(p.created_at, zone) for p in revisions],
                    "By": [p.created_by for p in revisions],
                    "Policy": [describe(p) for p in revisions],
                }
            ),
            hide_index=True,
            width="stretch",
            height=table_height(len(revisions)),
            column_config={"Policy": st.column_config.TextColumn(width="large")},
        )
