"""Registry page, Datasets view: the dataset list, a dataset's versions with their checks and
PII findings, the PII exception form, and the form that registers a version."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from models.dataset import DatasetCreate, DatasetVersion, PiiStatus
from pages.components.context import current_actor, current_user, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form, show_error
from pages.components.formatting import local_time, table_height
from pages.components.registry_models import int_param
from services import teams
from services.errors import PortalError, ValidationError
from services.registry import dataset_catalog, datasets
from services.registry.dataset_files import DatasetSource
from services.registry.datasets import DatasetRejected, SplitOptions
from services.registry.formats import DatasetFormat
from services.registry.inspection import DatasetReport
from services.validation import parse

PII_BADGES = {
    "clean": ":green-badge[clean]",
    "flagged": ":red-badge[flagged for PII]",
    "excepted": ":orange-badge[PII accepted]",
}
NEW = 0


def size_text(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def render_list(can_register: bool, can_except: bool) -> None:
    text = st.text_input(
        "Search datasets", placeholder="Name or description", label_visibility="collapsed"
    )
    rows = attempt(
        lambda: dataset_catalog.list_datasets(database(), actor=current_actor(), text=text)
    )
    if rows is None:
        return
    if not rows:
        st.info(
            "No dataset matches."
            if text
            else "No datasets yet. Register the first one below: "
            "upload a JSONL file or point at an object in S3.",
            icon=":material/dataset:",
        )
    else:
        zone = settings().zone
        frame = pd.DataFrame(
            {
                "Dataset": [r.name for r in rows],
                "Owner team": [r.owner_team or "—" for r in rows],
                "Versions": [r.versions for r in rows],
                "Latest": [f"v{r.latest}" if r.latest else "—" for r in rows],
                "Records": [r.records for r in rows],
                "Size": [size_text(r.size_bytes) for r in rows],
                "Format": [DatasetFormat(r.format).label if r.format else "—" for r in rows],
                "PII": [r.pii_status or "—" for r in rows],
                "Updated": [local_time(r.updated_at, zone) for r in rows],
            }
        )
        event = st.dataframe(
            frame,
            hide_index=True,
            on_select="rerun",
            selection_mode="single-row",
            key="datasets-table",
            height=table_height(len(rows)),
            column_config={"Records": st.column_config.NumberColumn(format="localized")},
        )
        chosen = event.selection.rows if event is not None else []
        if chosen:
            st.query_params["dataset"] = str(rows[chosen[0]].id)
            st.rerun()
    if can_register:
        _register_form(None)
    elif not can_except:
        st.caption("Registering datasets is for data scientists.")


def render_detail(dataset_id: int, can_register: bool, can_except: bool) -> None:
    if st.button("All datasets", icon=":material/arrow_back:", type="tertiary"):
        for name in ("dataset", "dataset_version"):
            st.query_params.pop(name, None)
        st.rerun()
    detail = attempt(
        lambda: dataset_catalog.dataset_detail(
            database(), actor=current_actor(), dataset_id=dataset_id
        )
    )
    if detail is None:
        return
    st.subheader(detail.dataset.name, anchor=False)
    st.caption(f"Owner: {detail.owner_team or 'no team'} · created by {detail.dataset.created_by}")
    if detail.dataset.description:
        st.markdown(detail.dataset.description)
    zone = settings().zone
    versions = detail.versions
    wanted = int_param("dataset_version", versions[0].number if versions else 0)
    frame = pd.DataFrame(
        {
            "Version": [v.number for v in versions],
            "Records": [v.record_count for v in versions],
            "Tokens (est.)": [v.token_estimate for v in versions],
            "Size": [size_text(v.size_bytes) for v in versions],
            "PII": [v.pii_status for v in versions],
            "SHA-256": [v.sha256[:16] for v in versions],
            "Source": [v.source_uri for v in versions],
            "Registered": [local_time(v.created_at, zone) for v in versions],
        }
    )
    default = [i for i, v in enumerate(versions) if v.number == wanted]
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"dataset-versions-{dataset_id}-{wanted}",
        height=table_height(len(versions)),
        selection_default={"selection": {"rows": default, "columns": []}} if default else None,
        column_config={
            "Version": st.column_config.NumberColumn(format="v%d"),
            "Records": st.column_config.NumberColumn(format="localized"),
            "Tokens (est.)": st.column_config.NumberColumn(format="localized"),
        },
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        version = versions[rows[0]]
        st.query_params["dataset_version"] = str(version.number)
        _version(version, can_except)
    if can_register:
        _register_form(dataset_id)


def _version(version: DatasetVersion, can_except: bool) -> None:
    st.markdown(f"### Version {version.number} {PII_BADGES.get(version.pii_status, '')}")
    with st.container(horizontal=True):
        st.metric("Records", f"{version.record_count:,}", border=True)
        st.metric("Tokens (about)", f"{version.token_estimate:,}", border=True)
        st.metric("Size", size_text(version.size_bytes), border=True)
    st.caption(
        f"{DatasetFormat(version.format).label} · SHA-256 `{version.sha256}` · "
        f"from `{version.source_uri}` · registered by {version.created_by}"
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(
            f"**Splits** (seed {version.split_seed}"
            f"{', stratified by ' + version.stratify_field if version.stratify_field else ''})"
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "Split": list(version.splits),
                    "Records": [s.get("records") for s in version.splits.values()],
                    "SHA-256": [(s.get("sha256") or "")[:16] for s in version.splits.values()],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with right:
        st.markdown("**Personal data scan**")
        _findings(version.pii_findings)
        if version.pii_status == PiiStatus.EXCEPTED.value:
            st.caption(f"Accepted by {version.pii_exception_by}: {version.pii_exception_reason}")
        elif version.pii_status == PiiStatus.FLAGGED.value:
            st.warning(
                "Fine-tuning refuses this version until an approver records an exception.",
                icon=":material/shield:",
            )
            if can_except:
                _exception_form(version)


def _findings(findings: dict[str, dict[str, Any]]) -> None:
    if not findings:
        st.caption(
            "Nothing found: no e-mail addresses, phone or card numbers, SSNs, IBANs, "
            "AWS keys or IP addresses."
        )
        return
    st.dataframe(
        pd.DataFrame(
            {
                "Kind": [f.get("label", k) for k, f in findings.items()],
                "Count": [f.get("count") for f in findings.values()],
                "Examples (masked)": [
                    ", ".join(map(str, f.get("examples") or [])) for f in findings.values()
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def _exception_form(version: DatasetVersion) -> None:
    with st.form(f"pii-exception-{version.id}"):
        reason = st.text_area(
            "Why these findings are acceptable",
            placeholder="e.g. synthetic test numbers agreed with the DPO (ticket 1234)",
        )
        if not st.form_submit_button("Record exception", type="primary"):
            return
        done = attempt(
            lambda: datasets.except_pii(
                database(), actor=current_actor(), version_id=version.id or 0, reason=reason
            )
        )
    if done is not None:
        flash(f"Recorded the PII exception for version {version.number}.")
        st.rerun()


def show_report(report: DatasetReport) -> None:
    """What the checks found, line by line, so the user can fix the file."""
    st.markdown(f"**{report.record_count:,} records checked**, {report.issue_count:,} bad line(s).")
    if report.issues:
        st.dataframe(
            pd.DataFrame(
                {
                    "Line": [i.line for i in report.issues],
                    "Problem": [i.reason for i in report.issues],
                }
            ),
            hide_index=True,
            width="stretch",
            height=table_height(len(report.issues)),
        )
        if report.issue_count > len(report.issues):
            st.caption(f"The first {len(report.issues):,} of {report.issue_count:,} bad lines.")


def _register_form(dataset_id: int | None) -> None:
    title = "Register a new version" if dataset_id else "Register a dataset version"
    with (
        st.expander(title, icon=":material/upload_file:", expanded=False),
        st.form(form_key("dataset")),
    ):
        new_dataset = None
        if dataset_id is None:
            left, right = st.columns(2)
            name = left.text_input("Dataset name", placeholder="e.g. support-conversations")
            team_list = teams.list_teams(database())
            names: dict[int | None, str] = {None: "— none —"} | {t.id: t.name for t in team_list}
            mine = current_user().team_id
            team = right.selectbox(
                "Owner team",
                list(names),
                index=list(names).index(mine) if mine in names else 0,
                format_func=names.__getitem__,
            )
            description = st.text_input("Description")
        fmt = st.selectbox(
            "Format",
            list(DatasetFormat),
            format_func=lambda f: f"{f.label} — {f.description}",
            index=list(DatasetFormat).index(DatasetFormat.CHAT),
        )
        upload = st.file_uploader("Upload a JSONL file", type=["jsonl", "json", "txt"])
        uri = st.text_input("…or read it from S3", placeholder="s3://bucket/path/data.jsonl")
        cols = st.columns(5)
        seed = cols[0].number_input("Split seed", min_value=0, value=42, step=1)
        train = cols[1].number_input("Train", min_value=0.0, max_value=1.0, value=0.8, step=0.05)
        val = cols[2].number_input("Validation", min_value=0.0, max_value=1.0, value=0.1, step=0.05)
        test = cols[3].number_input("Test", min_value=0.0, max_value=1.0, value=0.1, step=0.05)
        stratify = cols[4].text_input("Stratify by field", placeholder="optional")
        if not st.form_submit_button("Check and register", type="primary"):
            return
        try:
            if dataset_id is None:
                new_dataset = parse(
                    DatasetCreate, {"name": name, "owner_team_id": team, "description": description}
                )
            source = _source(upload, uri)
            split = SplitOptions(int(seed), (train, val, test), stratify.strip() or None)
        except PortalError as error:
            show_error(error)
            return
    _register(dataset_id, new_dataset, source, fmt or DatasetFormat.CHAT, split)


def _source(upload: UploadedFile | None, uri: str) -> DatasetSource:
    if upload is not None and uri.strip():
        raise ValidationError("Choose one: an upload or an S3 URI, not both.")
    if upload is not None:
        return DatasetSource.upload(upload, upload.name, upload.size)
    if uri.strip():
        return DatasetSource.s3(uri)
    raise ValidationError("Upload a JSONL file or give an s3:// URI.", fields={"file": "required"})


def _register(
    dataset_id: int | None,
    new_dataset: DatasetCreate | None,
    source: DatasetSource,
    fmt: DatasetFormat,
    split: SplitOptions,
) -> None:
    bar = st.progress(0.0, text=f"Checking {source.name}…")

    def progress(done: int, total: int | None) -> None:
        share = min(done / total, 1.0) if total else 0.0
        bar.progress(
            share, text=f"Checked {size_text(done)}" + (f" of {size_text(total)}" if total else "")
        )

    try:
        outcome = datasets.register_version(
            database(),
            settings(),
            actor=current_actor(),
            source=source,
            fmt=fmt,
            dataset_id=dataset_id,
            new_dataset=new_dataset,
            split=split,
            progress=progress,
        )
    except DatasetRejected as rejected:
        bar.empty()
        show_error(rejected)
        show_report(rejected.report)
        return
    except PortalError as error:
        bar.empty()
        show_error(error)
        return
    bar.empty()
    renew_form("dataset")
    version = outcome.version
    if outcome.duplicate:
        flash(f"{outcome.dataset_name} already has these exact bytes as version {version.number}.")
    else:
        flash(
            f"Registered {outcome.dataset_name} v{version.number}: {version.record_count:,} "
            f"records, PII {version.pii_status}."
        )
    st.query_params["dataset"] = str(version.dataset_id)
    st.query_params["dataset_version"] = str(version.number)
    st.rerun()
