"""The live app's own timeline marks: camera alerts (tamper, offline, ...).

This is the hook described in :mod:`vigil.live.marks`; the alerts app predates it, so
the marks for its alerts are contributed here, read through the app registry (alerts
sits below live in the app order). Motion marks will come from the analytics app's own
``timeline.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps

from vigil.school.models import Camera


def marks(camera: Camera, start: datetime, end: datetime) -> list[dict[str, Any]]:
    alert = apps.get_model("alerts", "Alert")
    rows = (
        alert.objects.filter(camera=camera, opened_at__lt=end)
        .exclude(resolved_at__lt=start)
        .order_by("opened_at")[:500]
    )
    return [
        {
            "start": a.opened_at,
            "end": a.resolved_at,
            "kind": "tamper" if a.cause.startswith("tamper") else "alert",
            "label": a.title,
        }
        for a in rows
    ]
