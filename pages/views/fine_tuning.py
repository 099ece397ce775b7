"""Fine-tuning: launch jobs locally, on SageMaker or on Bedrock; watch, stop and register them.

Deep links: ``?job=<id>`` opens a job; ``?view=launch`` the launch form."""

from __future__ import annotations

import streamlit as st

from pages.components import training_job, training_jobs, training_launch
from pages.components.feedback import show_flash
from pages.components.guard import page_user
from pages.components.registry_models import int_param
from services.permissions import Permission, permissions_of

VIEWS = {"jobs": "Jobs", "launch": "Launch"}

user = page_user("fine-tuning")
show_flash()
granted = permissions_of(user.roles)
can_launch = Permission.LAUNCH_JOBS in granted

if "job" in st.query_params:
    training_job.render(int_param("job", 0))
else:
    views = VIEWS if can_launch else {"jobs": "Jobs"}
    current = st.query_params.get("view", "jobs")
    current = current if current in views else "jobs"
    if len(views) > 1:
        view = st.segmented_control(
            "View",
            list(views),
            format_func=views.__getitem__,
            default=current,
            label_visibility="collapsed",
            key=f"fine-tuning-view-{current}",
        )
        if view is not None and view != current:
            st.query_params.clear()
            st.query_params["view"] = view
            st.rerun()
    if current == "launch":
        training_launch.render()
    else:
        training_jobs.render(can_launch, "mine" if can_launch else "all")
