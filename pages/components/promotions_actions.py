"""Promotions page, what the viewer may do with one request: approve (with an optional
comment), reject (a comment is required, and the rejection is confirmed), withdraw their own
request, and retry side effects that are still pending. Actions a viewer lacks are absent,
with the reason in one line."""

from __future__ import annotations

import streamlit as st

from models.promotion import RequestStatus, SideEffectStatus
from pages.components.context import current_actor, current_user, database, settings
from pages.components.feedback import attempt, flash
from services import promotions
from services.permissions import Permission, permissions_of
from services.promotions import RequestDetail

RETRY_ERRORS = "promotion-retry-errors"


def render(detail: RequestDetail) -> None:
    granted = permissions_of(current_user().roles)
    request = detail.row.request
    pending = request.status == RequestStatus.PENDING.value and detail.row.status_label == (
        RequestStatus.PENDING.label
    )
    if detail.may_decide:
        _decide(detail)
    elif pending:
        st.info(detail.decide_reason, icon=":material/info:")
    if detail.may_withdraw:
        _withdraw(detail)
    waiting = [e for e in detail.effects if e.status == SideEffectStatus.PENDING.value]
    if waiting and granted & {Permission.REQUEST_PROMOTION, Permission.APPROVE_PROMOTION}:
        _retry(detail, len(waiting))


def _what(detail: RequestDetail) -> str:
    return (
        f"{detail.row.model_name} v{detail.row.version_number} → {detail.row.request.target_stage}"
    )


def _decide(detail: RequestDetail) -> None:
    request_id = detail.row.request.id or 0
    needed = detail.row.required_approvals - detail.row.request.approvals
    with st.container(border=True):
        st.markdown("**Your decision**")
        st.caption(
            f"Your approval is one of {needed} still needed; the last one moves the version."
            if needed > 1
            else "Your approval completes the request and moves the version now."
        )
        comment = st.text_area(
            "Comment",
            key=f"decision-comment-{request_id}",
            placeholder="Optional to approve; required to reject (the requester reads it).",
            height=80,
        )
        with st.container(horizontal=True):
            approve = st.button("Approve", type="primary", icon=":material/check:")
            with st.popover("Reject…", icon=":material/close:"):
                st.write(
                    "Rejecting closes the request for good; the requester must file a new one. "
                    "Your comment above is sent as the reason."
                )
                reject = st.button("Reject request", type="primary", key="confirm-reject")
    if approve:
        done = attempt(
            lambda: promotions.approve(
                database(),
                settings(),
                actor=current_actor(),
                request_id=request_id,
                comment=comment,
            )
        )
        if done is not None:
            if done.status == RequestStatus.APPROVED.value:
                flash(
                    f"Approved request #{request_id}: {detail.row.model_name} "
                    f"v{detail.row.version_number} is now in {done.target_stage}."
                )
            else:
                flash(
                    f"Approved request #{request_id} ({done.approvals} of "
                    f"{detail.row.required_approvals}); it waits for more approvals."
                )
            _forget_comment(request_id)
            st.rerun()
    if reject:
        done = attempt(
            lambda: promotions.reject(
                database(),
                settings(),
                actor=current_actor(),
                request_id=request_id,
                comment=comment,
            )
        )
        if done is not None:
            flash(f"Rejected request #{request_id} ({_what(detail)}).")
            _forget_comment(request_id)
            st.rerun()


def _forget_comment(request_id: int) -> None:
    st.session_state.pop(f"decision-comment-{request_id}", None)


def _withdraw(detail: RequestDetail) -> None:
    request_id = detail.row.request.id or 0
    with st.popover("Withdraw request", icon=":material/undo:"):
        st.write("The request closes and nobody can approve it any more. You can file a new one.")
        comment = st.text_input("Why (optional)", key=f"withdraw-comment-{request_id}")
        if st.button("Withdraw it", type="primary", key="confirm-withdraw"):
            done = attempt(
                lambda: promotions.withdraw(
                    database(), actor=current_actor(), request_id=request_id, comment=comment
                )
            )
            if done is not None:
                flash(f"Withdrew request #{request_id} ({_what(detail)}).")
                st.rerun()


def _retry(detail: RequestDetail, waiting: int) -> None:
    request_id = detail.row.request.id or 0
    st.warning(
        f"{waiting} change{'s' if waiting != 1 else ''} outside the portal "
        f"{'are' if waiting != 1 else 'is'} still pending (see Side effects). The decision "
        "stands; the portal keeps retrying in the background.",
        icon=":material/sync_problem:",
    )
    failed = st.session_state.pop(RETRY_ERRORS, None)
    if failed:
        st.error(
            "The retry did not get through:\n" + "\n".join(f"- {e}" for e in failed),
            icon=":material/error:",
        )
    if st.button("Retry sync", icon=":material/sync:"):
        errors = attempt(
            lambda: promotions.retry(
                database(), settings(), actor=current_actor(), request_id=request_id
            )
        )
        if errors is None:
            return
        if errors:
            st.session_state[RETRY_ERRORS] = errors  # shown after the rerun, beside fresh counts
        else:
            flash(f"Synced request #{request_id}: every side effect is done.")
        st.rerun()
