"""The health panel on a camera's page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from vigil.authz.rules import Action
from vigil.authz.services import can
from vigil.recording.health import statuses
from vigil.recording.models import Gap, Segment
from vigil.school.models import Camera


def camera_panels(request: HttpRequest, camera: Camera) -> list[dict[str, Any]]:
    if not can(request.user, Action.HEALTH_VIEW, camera):  # type: ignore[arg-type]
        return []
    status = statuses(Camera.objects.filter(pk=camera.pk))[0]
    return [
        {
            "template": "recording/_camera_panel.html",
            "status": status,
            "gaps": Gap.objects.filter(camera=camera).order_by("-start")[:8],
            "oldest": Segment.objects.filter(camera=camera).order_by("start").first(),
        }
    ]
