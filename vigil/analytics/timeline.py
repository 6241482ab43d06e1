"""Motion marks on the playback timeline (the hook of ``vigil.live.marks``).

Called by the playback page after its own audited playback decision for the camera and
range, so no further check here. Alert marks come from the live app's own hook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from vigil.analytics.models import MotionEvent
from vigil.school.models import Camera

MAX_MARKS = 2000


def marks(camera: Camera, start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = (
        MotionEvent.objects.filter(camera=camera, start__lt=end)
        .exclude(end__lt=start)
        .order_by("start")
        .only("start", "end", "zones", "peak_score")[:MAX_MARKS]
    )
    out = []
    for ev in rows:
        label = _("Motion")
        if ev.zones:
            label = f"{label}: {ev.zones.replace(',', ', ')}"
        out.append({"start": ev.start, "end": ev.end, "kind": "motion", "label": label})
    return out
