"""Per-camera health as the desk, the API and `vigil status` show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone

from vigil.recording.models import CameraHealth, RecorderNode, Segment
from vigil.school.models import Camera

NODE_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class CameraStatus:
    code: str
    name: str
    area: str
    recorder: str
    state: str  # online, offline, not_recorded
    fps: float
    bitrate_bps: float
    last_frame_at: datetime | None
    reconnects_last_hour: int
    recorded_today_s: float
    expected_today_s: float
    last_error: str
    codec: str
    width: int
    height: int

    @property
    def coverage_today(self) -> float:
        return (
            min(1.0, self.recorded_today_s / self.expected_today_s)
            if self.expected_today_s
            else 0.0
        )


def local_midnight(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


def statuses(cameras: QuerySet[Camera], now: datetime | None = None) -> list[CameraStatus]:
    now = now or timezone.now()
    midnight = local_midnight(now)
    cams = list(cameras.select_related("area", "recorder").order_by("code"))
    ids = [c.pk for c in cams]
    health = {h.camera_id: h for h in CameraHealth.objects.filter(camera_id__in=ids)}
    alive = {
        n.recorder_id
        for n in RecorderNode.objects.filter(
            stopped_at__isnull=True, heartbeat_at__gte=now - NODE_TIMEOUT
        )
    }
    # Segments are short (seconds): counting those that start today is exact enough.
    recorded = dict(
        Segment.objects.filter(camera_id__in=ids, start__gte=midnight, start__lt=now)
        .values("camera_id")
        .annotate(total=Sum("duration"))
        .values_list("camera_id", "total")
    )
    expected = (now - midnight).total_seconds()
    out = []
    for cam in cams:
        h = health.get(cam.pk)
        if cam.recorder_id not in alive or h is None:
            state = "not_recorded"
        else:
            state = "online" if h.online else "offline"
        seconds = float(recorded.get(cam.pk) or 0.0)
        out.append(
            CameraStatus(
                code=cam.code,
                name=cam.name,
                area=cam.area.name,
                recorder=cam.recorder.code,
                state=state,
                fps=h.fps if h else 0.0,
                bitrate_bps=h.bitrate_bps if h else 0.0,
                last_frame_at=h.last_frame_at if h else None,
                reconnects_last_hour=h.reconnects_last_hour if h else 0,
                recorded_today_s=round(seconds, 1),
                expected_today_s=round(expected, 1),
                last_error=h.last_error if h else "",
                codec=h.codec if h else "",
                width=h.width if h else 0,
                height=h.height if h else 0,
            )
        )
    return out
