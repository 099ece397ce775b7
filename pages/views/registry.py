"""Registry: the catalog of models, versions and datasets, and the external catalogs it syncs.

Deep links: ``?model=<id>&version=<n>`` opens a version's card, ``?dataset=<id>`` a dataset."""

from __future__ import annotations

import streamlit as st

from pages.components import (
    registry_datasets,
    registry_model,
    registry_models,
    registry_sources,
)
from pages.components.feedback import show_flash
from pages.components.guard import page_user
from pages.components.registry_models import int_param
from services.permissions import Permission, permissions_of

VIEWS = {"models": "Models", "datasets": "Datasets", "sources": "Sources"}

user = page_user("registry")
show_flash()
granted = permissions_of(user.roles)
can_register = Permission.MANAGE_REGISTRY in granted

if "model" in st.query_params:
    st.query_params["view"] = "models"
elif "dataset" in st.query_params:
    st.query_params["view"] = "datasets"
current = st.query_params.get("view", "models")
view = st.segmented_control(
    "View",
    list(VIEWS),
    format_func=VIEWS.__getitem__,
    default=current if current in VIEWS else "models",
    label_visibility="collapsed",
    key=f"registry-view-{current}",
)
if view is not None and view != current:
    st.query_params.clear()
    st.query_params["view"] = view
    st.rerun()

can_except = Permission.EXCEPT_DATASET_PII in granted
if current == "datasets":
    if "dataset" in st.query_params:
        registry_datasets.render_detail(int_param("dataset", 0), can_register, can_except)
    else:
        registry_datasets.render_list(can_register, can_except)
elif current == "sources":
    registry_sources.render(Permission.SYNC_REGISTRY in granted)
elif "model" in st.query_params:
    model_id = int_param("model", 0)
    registry_model.render(model_id, can_register)
else:
    registry_models.render(can_register)
