"""Promotions: data scientists put model versions forward for staging or production with the
evidence attached; approvers review them against the stage's policy and decide.

Deep links: ``?request=<id>`` opens a request; ``?version=<version id>`` opens the request
form with that version chosen."""

from __future__ import annotations

from pages.components import promotions_detail, promotions_request_form, promotions_table
from pages.components.feedback import show_flash
from pages.components.guard import page_user
from pages.components.registry_models import int_param
from services.permissions import Permission, permissions_of

user = page_user("promotions")
show_flash()
granted = permissions_of(user.roles)
can_request = Permission.REQUEST_PROMOTION in granted

if int_param("request", 0):
    promotions_detail.render(int_param("request", 0))
else:
    if Permission.APPROVE_PROMOTION in granted:
        promotions_table.render_queue()
    if can_request:
        promotions_request_form.render()
    promotions_table.render_history(can_request)
