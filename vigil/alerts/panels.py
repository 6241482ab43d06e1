"""The alerts panel on a camera's page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from vigil.alerts import services
from vigil.authz.rules import Action
from vigil.authz.services import can
from vigil.school.models import Camera


def camera_panels(request: HttpRequest, camera: Camera) -> list[dict[str, Any]]:
    if not can(request.user, Action.ALERT_VIEW, camera):  # type: ignore[arg-type]
        return []
    alerts = services.visible_alerts(request.user).filter(camera=camera)  # type: ignore[arg-type]
    return [
        {
            "template": "alerts/_camera_panel.html",
            "alerts": list(alerts.order_by("-opened_at")[:8]),
            "camera": camera,
        }
    ]
