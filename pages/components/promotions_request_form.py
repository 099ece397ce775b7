"""Promotions page, the request form: a version, the stage it should go to (with the policy
that will judge it), and why. ``?version=<version id>`` preselects the version."""

from __future__ import annotations

import streamlit as st

from models.promotion import TARGET_STAGES, RequestCreate
from pages.components.context import current_actor, database
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.layout import internal_link
from pages.components.promotions_table import open_request
from pages.components.registry_models import int_param
from services import promotions
from services.promotions.policies import describe
from services.validation import parse

FORM = "promotion-request"


def render() -> None:
    actor = current_actor()
    wanted = int_param("version", 0)
    with st.expander("Request promotion", icon=":material/upgrade:", expanded=bool(wanted)):
        versions = attempt(lambda: promotions.requestable_versions(database(), actor=actor))
        policies = attempt(lambda: promotions.current_policies(database(), actor=actor))
        if versions is None or policies is None:
            return
        if not versions:
            st.info(
                "There is no model version to put forward yet. Register one on the Registry "
                "page (or from a finished fine-tuning job), then come back.",
                icon=":material/inbox:",
            )
            internal_link("/registry", "Open the Registry", ":material/inventory_2:")
            return
        ids = [v.version_id for v in versions]
        labels = {v.version_id: v.label for v in versions}
        if wanted and wanted not in labels:
            st.warning(
                "The version in the link no longer exists or cannot be put forward; "
                "choose one below.",
                icon=":material/warning:",
            )
        preselected = next((v for v in versions if v.version_id == wanted), None)
        targets = list(TARGET_STAGES)
        # A version already in staging usually goes on to production.
        default_target = "production" if preselected and preselected.stage == "staging" else None
        with st.form(form_key(FORM)):
            version_id = st.selectbox(
                "Model version",
                ids,
                index=ids.index(wanted) if wanted in labels else None,
                format_func=labels.__getitem__,
                placeholder="Choose a version",
            )
            target = st.radio(
                "Target stage",
                targets,
                index=targets.index(default_target) if default_target else 0,
                format_func=str.capitalize,
                captions=[
                    f"Policy revision {policies[s].revision}: {describe(policies[s])}"
                    for s in targets
                ],
                horizontal=False,
            )
            justification = st.text_area(
                "Justification",
                placeholder="Why this version should go to the target stage: what it improves, "
                "how it was evaluated, what reviewers should look at.",
                height=100,
            )
            st.caption(
                "The version's metrics are checked against the target's gates when you send "
                "the request; they are kept with it as evidence."
            )
            if not st.form_submit_button("Request promotion", type="primary"):
                return
            if version_id is None:
                st.error("Choose the model version to put forward.", icon=":material/error:")
                return
            filed = attempt(
                lambda: promotions.request_promotion(
                    database(),
                    actor=actor,
                    data=parse(
                        RequestCreate,
                        {
                            "model_version_id": version_id,
                            "target_stage": target,
                            "justification": justification,
                        },
                    ),
                )
            )
    if filed is not None and filed.id is not None:
        renew_form(FORM)
        flash(f"Requested {labels[int(version_id)].split(' (')[0]} → {target} (#{filed.id}).")
        open_request(filed.id)
