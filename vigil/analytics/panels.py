"""The analysis panel on a camera's page: quality per camera-day, the analyser's status,
and (for those who manage the site) the masks and zones editor."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

from vigil.analytics import services
from vigil.analytics.models import AnalysisStatus
from vigil.authz.rules import Action
from vigil.authz.services import can
from vigil.school.models import Camera


def camera_panels(request: HttpRequest, camera: Camera) -> list[dict[str, Any]]:
    user = request.user
    if not can(user, Action.HEALTH_VIEW, camera):  # type: ignore[arg-type]
        return []
    row = services.settings_for(camera)
    manage = can(user, Action.SITE_MANAGE, camera)  # type: ignore[arg-type]
    return [
        {
            "template": "analytics/_camera_panel.html",
            "camera": camera,
            "days": services.quality_days(camera),
            "latest": services.latest_sample(camera),
            "status": AnalysisStatus.objects.filter(camera=camera).first(),
            "settings": row,
            "manage": manage,
            "service": can(user, Action.CAMERA_SERVICE, camera),  # type: ignore[arg-type]
            "live": manage and can(user, Action.LIVE_VIEW, camera),  # type: ignore[arg-type]
            "masks_json": json.dumps(row.masks),
            "zones_json": json.dumps(row.zones, ensure_ascii=False),
        }
    ]
