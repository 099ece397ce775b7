"""Promotions page, one request: its status, the policy revision it was judged under, the
evidence captured when it was filed (gates, the incumbent, data governance, lineage), the
decisions so far and the side effects of the outcome. The actions sit in promotions_actions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from models.promotion import SideEffectKind
from pages.components import promotions_actions
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import BAD, GOOD, local_time
from pages.components.layout import internal_link, job_link, portal_job
from pages.components.promotions_table import approvals_text, status_badge
from services import promotions
from services.promotions import RequestDetail

DECISIONS = {"approve": "✅ Approved", "reject": "❌ Rejected"}


def _back() -> None:
    if st.button("All requests", icon=":material/arrow_back:", type="tertiary"):
        st.query_params.pop("request", None)
        st.rerun()


def render(request_id: int) -> None:
    _back()
    detail = attempt(
        lambda: promotions.request_detail(database(), actor=current_actor(), request_id=request_id)
    )
    if detail is None:
        return
    _summary(detail)
    promotions_actions.render(detail)
    evidence, decisions, effects = st.tabs(["Evidence", "Decisions", "Side effects"])
    with evidence:
        _evidence(detail)
    with decisions:
        _decisions(detail)
    with effects:
        _effects(detail)


def _summary(detail: RequestDetail) -> None:
    request = detail.row.request
    zone = settings().zone
    st.subheader(
        f"Request #{request.id}: {detail.row.model_name} v{detail.row.version_number} "
        f"→ {request.target_stage}",
        anchor=False,
    )
    closed = f" · closed {local_time(request.decided_at, zone)}" if request.decided_at else ""
    expires = (
        f" · expires {local_time(request.expires_at, zone)}"
        if request.expires_at and not request.decided_at
        else ""
    )
    st.markdown(
        f"{status_badge(detail.row)} · {approvals_text(detail.row)} approvals · "
        f"requested by **{request.requested_by}** on {local_time(request.created_at, zone)}"
        f"{closed}{expires}"
    )
    st.markdown(
        f"**Policy revision {detail.policy.revision}** ({request.target_stage}): "
        f"{detail.policy_summary}"
    )
    st.markdown(f"**Justification**  \n{request.justification}")
    if request.closing_comment:
        st.markdown(f"**Closing comment**  \n{request.closing_comment}")


def _evidence(detail: RequestDetail) -> None:
    ev = detail.evidence
    st.caption(
        f"Captured when the request was filed (v{ev.get('version', '?')} was then in "
        f"{ev.get('from_stage', '?')}); later changes to the version do not alter it."
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        _gates(ev.get("gates", []))
        _incumbent(ev)
    with right:
        _governance(ev)
        _lineage(ev, detail.row.request.model_id)


def _gates(gates: list[dict[str, Any]]) -> None:
    st.markdown("**Policy gates**")
    if not gates:
        st.caption("This policy revision has no metric gates.")
        return
    table = pd.DataFrame(
        {
            "Gate": [g["gate"] for g in gates],
            "Value": [g["value"] for g in gates],
            "Result": ["Pass" if g["passed"] else "Fail" for g in gates],
            "Note": [g.get("reason") or "" for g in gates],
        }
    )
    # Words in colour, not emoji: a browser without an emoji font showed an empty box.
    st.dataframe(
        table.style.map(
            lambda r: f"color: {GOOD if r == 'Pass' else BAD}; font-weight: 600",
            subset=["Result"],
        ),
        hide_index=True,
        width="stretch",
        column_config={"Value": st.column_config.NumberColumn(format="%.4g")},
    )


def _incumbent(ev: dict[str, Any]) -> None:
    metrics: dict[str, float | None] = ev.get("metrics", {})
    incumbent = ev.get("incumbent")
    st.markdown("**Compared with the version in the target stage**")
    if incumbent is None:
        st.caption("No other version held the target stage when this was filed.")
        if metrics:
            st.dataframe(
                pd.DataFrame({"Metric": list(metrics), "This version": list(metrics.values())}),
                hide_index=True,
                width="stretch",
            )
        return
    theirs: dict[str, float] = incumbent.get("metrics", {})
    deltas: dict[str, float] = incumbent.get("deltas", {})
    names = sorted(set(metrics) | set(theirs))
    this_col, their_col = f"v{ev.get('version')} (this)", f"v{incumbent['number']} (now)"
    st.dataframe(
        pd.DataFrame(
            {
                "Metric": names,
                this_col: [metrics.get(n) for n in names],
                their_col: [theirs.get(n) for n in names],
                "Change": [deltas.get(n) for n in names],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            this_col: st.column_config.NumberColumn(format="%.4g"),
            their_col: st.column_config.NumberColumn(format="%.4g"),
            "Change": st.column_config.NumberColumn(format="%+.4g"),
        },
    )
    st.caption("Change = this version minus the incumbent; for losses, lower is better.")


def _governance(ev: dict[str, Any]) -> None:
    st.markdown("**Training data**")
    data = ev.get("dataset")
    if data is None:
        st.caption("No dataset version recorded for this model version.")
        return
    internal_link(
        f"/registry?dataset={data['dataset_id']}&dataset_version={data['version']}",
        f"{data['name']} v{data['version']}",
        ":material/dataset:",
    )
    line = f"PII {data['pii_status']}"
    if data.get("pii_exception_by"):
        line += f" · exception by {data['pii_exception_by']}: {data.get('pii_exception_reason')}"
    st.caption(line)
    if ev.get("pii_blocked"):
        st.warning("The policy blocks PII-flagged training data.", icon=":material/warning:")


def _lineage(ev: dict[str, Any], model_id: int) -> None:
    st.markdown("**Lineage**")
    lineage: dict[str, Any] = ev.get("lineage", {})
    labels = {
        "base_model": "Base model",
        "job_ref": "Fine-tuning job",
        "mlflow_run_id": "MLflow run",
        "artifact_uri": "Artifact",
        "sagemaker_package_arn": "SageMaker package",
    }
    job = lineage.get("job_ref")
    if portal_job(job):
        labels.pop("job_ref")  # linked below instead
    facts = [f"- Trained by: **{ev.get('trained_by', '—')}**"]
    facts += [f"- {label}: `{lineage[key]}`" for key, label in labels.items() if lineage.get(key)]
    st.markdown("\n".join(facts))
    if portal_job(job):
        job_link(str(job))
    internal_link(
        f"/registry?model={model_id}&version={ev.get('version')}",
        "Open the model card",
        ":material/inventory_2:",
    )


def _decisions(detail: RequestDetail) -> None:
    if not detail.decisions:
        st.caption(
            f"No decisions yet. It needs {detail.row.required_approvals} approval"
            f"{'s' if detail.row.required_approvals != 1 else ''} "
            f"by the {detail.policy.approver_role.replace('_', ' ')} role."
        )
        return
    zone = settings().zone
    st.dataframe(
        pd.DataFrame(
            {
                "Who": [d.decided_by for d in detail.decisions],
                "Decision": [DECISIONS.get(d.decision, d.decision) for d in detail.decisions],
                "When": [local_time(d.decided_at, zone) for d in detail.decisions],
                "Comment": [d.comment or "—" for d in detail.decisions],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def _effects(detail: RequestDetail) -> None:
    if not detail.effects:
        st.caption(
            "Nothing to carry out outside the portal yet."
            if detail.row.request.status == "pending"
            else "This outcome needed no change outside the portal."
        )
        return
    zone = settings().zone
    st.dataframe(
        pd.DataFrame(
            {
                "What": [SideEffectKind(e.kind).label for e in detail.effects],
                "Status": ["Done" if e.status == "done" else "Pending" for e in detail.effects],
                "Attempts": [e.attempts for e in detail.effects],
                "Last tried": [local_time(e.last_attempt_at, zone) for e in detail.effects],
                "Last error": [e.last_error or "" for e in detail.effects],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "The portal's stage is the truth: a failed side effect never undoes the decision. "
        "Pending ones are retried in the background."
    )
