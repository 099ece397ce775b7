"""Registry page, Models view: filters in one row, the catalog table with row selection, pages,
and the form to register a model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from models.registry import ModelAssetCreate, ModelKind, Stage
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.formatting import local_time, parse_pairs, table_height
from pages.components.layout import page_footer
from services import teams
from services.access import Actor
from services.registry import assets, catalog
from services.registry.catalog import ModelPage, ModelQuery
from services.validation import parse

PAGE_SIZE = 25
KIND_VALUES = [k.value for k in ModelKind]
STAGE_VALUES = [s.value for s in Stage]
SORTS: dict[catalog.SortKey, str] = {
    "name": "Name",
    "updated": "Recently updated",
    "provider": "Provider",
    "versions": "Most versions",
}


@st.cache_data(ttl=60, show_spinner=False, max_entries=256)
def cached_page(db_url: str, actor: Actor, query: ModelQuery, page: int) -> ModelPage:
    """A user's click reruns the page; the same filters within a minute cost no query."""
    return catalog.search_models(
        database(), actor=actor, query=query, page=page, page_size=PAGE_SIZE
    )


@st.cache_data(ttl=60, show_spinner=False, max_entries=64)
def cached_options(db_url: str, actor: Actor) -> catalog.FilterOptions:
    return catalog.filter_options(database(), actor=actor)


def forget_cached_catalog() -> None:
    cached_page.clear()
    cached_options.clear()


def int_param(name: str, default: int) -> int:
    """A whole number from the URL, or ``default`` when it is missing or not a number."""
    value = st.query_params.get(name, "")
    return int(value) if value.isdigit() else default


def _list_param(name: str) -> list[str]:
    return [v for v in st.query_params.get_all(name) if v]


def _filters(options: catalog.FilterOptions) -> ModelQuery:
    """The filter row; every choice is mirrored into the URL so a copied link reopens it."""
    first = st.columns([2.2, 1.2, 1.2, 1.2, 1.2])
    text = first[0].text_input(
        "Search",
        value=st.query_params.get("q", ""),
        placeholder="Name, description, ARN or provider",
    )
    kinds = first[1].multiselect(
        "Kind",
        KIND_VALUES,
        default=[k for k in _list_param("kind") if k in KIND_VALUES],
        format_func=lambda k: ModelKind(k).label,
    )
    providers = first[2].multiselect(
        "Provider",
        options.providers,
        default=[p for p in _list_param("provider") if p in options.providers],
    )
    stages = first[3].multiselect(
        "Has a version in",
        STAGE_VALUES,
        default=[s for s in _list_param("stage") if s in STAGE_VALUES],
    )
    team_names = dict(options.teams)
    teams_chosen = first[4].multiselect(
        "Owner team",
        list(team_names),
        format_func=team_names.__getitem__,
        default=[t for t in team_names if str(t) in _list_param("team")],
    )
    second = st.columns([1.2, 1.2, 1, 2.8])
    tag = second[0].text_input(
        "Tag",
        value=st.query_params.get("tag", ""),
        placeholder="key or key=value",
        help=f"Tags in use: {', '.join(options.tag_keys) or 'none yet'}",
    )
    base = second[1].text_input(
        "Base model", value=st.query_params.get("base", ""), placeholder="e.g. llama"
    )
    sort_keys: list[catalog.SortKey] = list(SORTS)
    wanted = st.query_params.get("sort", "name")
    sort = second[2].selectbox(
        "Sort by",
        sort_keys,
        format_func=SORTS.__getitem__,
        index=sort_keys.index(wanted) if wanted in sort_keys else 0,
    )
    query = ModelQuery(
        text=text.strip(),
        kinds=tuple(kinds),
        providers=tuple(providers),
        stages=tuple(stages),
        team_ids=tuple(teams_chosen),
        tag=tag.strip(),
        base_model=base.strip(),
        sort=sort,
    )
    _mirror(query)
    return query


def _mirror(query: ModelQuery) -> None:
    values: dict[str, Any] = {
        "q": query.text,
        "kind": list(query.kinds),
        "provider": list(query.providers),
        "stage": list(query.stages),
        "team": [str(t) for t in query.team_ids],
        "tag": query.tag,
        "base": query.base_model,
        "sort": query.sort if query.sort != "name" else "",
    }
    for name, value in values.items():
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def _table(result: ModelPage) -> int | None:
    zone = settings().zone
    frame = pd.DataFrame(
        {
            "Model": [r.name for r in result.rows],
            "Kind": [
                ModelKind(r.kind).label if r.kind in KIND_VALUES else r.kind for r in result.rows
            ],
            "Provider": [r.provider or "—" for r in result.rows],
            "Owner team": [r.owner_team or "—" for r in result.rows],
            "Versions": [r.version_count for r in result.rows],
            "Production": [
                f"v{r.production_version}" if r.production_version else "—" for r in result.rows
            ],
            "Staging": [f"v{r.staging_version}" if r.staging_version else "—" for r in result.rows],
            "Base model": [r.base_model or "—" for r in result.rows],
            "Tags": [", ".join(f"{k}={v}" for k, v in r.tags.items()) for r in result.rows],
            "Updated": [local_time(r.updated_at, zone) for r in result.rows],
        }
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"models-{result.page}",
        height=table_height(len(result.rows), max_rows=25),
        column_config={
            "Model": st.column_config.TextColumn(width="medium"),
            "Versions": st.column_config.NumberColumn(format="%d", width="small"),
            "Tags": st.column_config.TextColumn(width="medium"),
        },
    )
    rows = event.selection.rows if event is not None else []
    return result.rows[rows[0]].id if rows else None


def render(can_register: bool) -> None:
    actor = current_actor()
    db_url = settings().resolved_database_url
    options = attempt(lambda: cached_options(db_url, actor))
    if options is None:
        return
    query = _filters(options)
    page = int_param("page", 1)
    result = attempt(lambda: cached_page(db_url, actor, query, page))
    if result is None:
        return
    if result.total == 0:
        filtered = query != replace(ModelQuery(), sort=query.sort)
        st.info(
            "No model matches these filters. Clear a filter or search for something else."
            if filtered
            else "The catalog is empty. Register a model below, or sync the "
            "catalogs of Bedrock, SageMaker and MLflow from the Sources view.",
            icon=":material/search_off:",
        )
    else:
        chosen = _table(result)
        page_footer(result.total, "model", result.page, result.pages)
        if chosen is not None:
            st.query_params["model"] = str(chosen)
            st.rerun()
    if can_register:
        _register_form()
    else:
        st.caption("Registering models is for data scientists.")


def _register_form() -> None:
    with (
        st.expander("Register a model", icon=":material/add_box:"),
        st.form(form_key("register-model")),
    ):
        left, right = st.columns(2)
        name = left.text_input("Name", placeholder="e.g. Support assistant")
        kind = right.selectbox(
            "Kind", [k.value for k in ModelKind], index=1, format_func=lambda k: ModelKind(k).label
        )
        provider = left.text_input("Provider", placeholder="e.g. Meta, Anthropic, in-house")
        base = right.text_input("Base model", placeholder="e.g. meta-llama/Llama-3.1-8B")
        team_list = teams.list_teams(database())
        names: dict[int | None, str] = {None: "— none —"} | {t.id: t.name for t in team_list}
        team = left.selectbox("Owner team", list(names), format_func=names.__getitem__)
        tags = right.text_input("Tags", placeholder="key=value, key2=value2")
        reference = st.text_input(
            "Reference", placeholder="Hugging Face id, ARN or URI, e.g. mistralai/Mistral-7B-v0.3"
        )
        description = st.text_area("Description", height=80)
        if not st.form_submit_button("Register model", type="primary"):
            return
        form = {
            "name": name,
            "kind": kind,
            "provider": provider,
            "base_model": base or None,
            "reference": reference,
            "owner_team_id": team,
            "description": description,
            "tags": parse_pairs(tags),
        }
        created = attempt(
            lambda: assets.register_model(
                database(), actor=current_actor(), data=parse(ModelAssetCreate, form)
            )
        )
    if created is not None:
        renew_form("register-model")
        forget_cached_catalog()
        flash(f"Registered model {created.name}.")
        st.query_params["model"] = str(created.id)
        st.rerun()
