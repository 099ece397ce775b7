"""Registry page, Sources view: the external catalogs, when each was last synced, what it saw
and what went wrong, and a button to sync now."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash
from pages.components.formatting import local_time
from pages.components.registry_models import forget_cached_catalog
from services.registry import sync
from services.registry.sources.base import sources_for


def render(can_sync: bool) -> None:
    sources = sources_for(settings())
    status = attempt(lambda: sync.sync_status(database(), actor=current_actor()))
    if status is None:
        return
    zone = settings().zone
    rows = []
    for name, source in sources.items():
        record = status.get(name)
        reason = source.unavailable_reason()
        failing = bool(record and record.last_error) and not reason
        rows.append(
            {
                "Source": source.label,
                "State": "not configured" if reason else ("failing" if failing else "ready"),
                "Last success": local_time(record.last_success_at if record else None, zone),
                "Models": record.models_seen if record else 0,
                "Versions": record.versions_seen if record else 0,
            }
        )
        if reason:
            st.info(f"**{source.label}**: {reason}", icon=":material/settings:")
        elif failing and record is not None:
            st.error(
                f"**{source.label}**: the last sync failed. {record.last_error}",
                icon=":material/sync_problem:",
            )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "A sync adds and updates models and versions; it never deletes them, and it "
        "never changes the stage the portal gave a version."
    )
    if not can_sync:
        st.caption("Syncing is for data scientists and administrators.")
        return
    usable = [name for name, source in sources.items() if source.unavailable_reason() is None]
    if not usable:
        st.info(
            "No source is configured yet. Set PORTAL_AWS_REGION for Bedrock and SageMaker; "
            "MLflow uses PORTAL_MLFLOW_TRACKING_URI.",
            icon=":material/settings:",
        )
        return
    if st.button("Sync now", icon=":material/sync:", type="primary"):
        results = []
        with st.status("Syncing the catalogs…", expanded=True) as progress:
            for name in usable:
                progress.write(f"Reading {sources[name].label}…")
                result = sync.sync_source(database(), actor=current_actor(), source=sources[name])
                progress.write(result.describe())
                results.append(result)
            failed = [r for r in results if r.error]
            progress.update(
                label="Sync finished with problems" if failed else "Sync finished",
                state="error" if failed else "complete",
            )
        forget_cached_catalog()
        if not any(r.error for r in results):
            flash("Synced " + "; ".join(r.describe() for r in results))
            st.rerun()
