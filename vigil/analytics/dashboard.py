"""The image-quality card on the dashboard: cameras due for maintenance."""

from __future__ import annotations

from typing import Any

from vigil.accounts.models import User
from vigil.analytics import services
from vigil.authz.rules import Action
from vigil.authz.services import can


def cards(user: User) -> list[dict[str, Any]]:
    if not can(user, Action.HEALTH_VIEW):
        return []
    items = services.maintenance_list(user)
    return [{"template": "analytics/_dashboard_card.html", "items": items[:6], "count": len(items)}]
