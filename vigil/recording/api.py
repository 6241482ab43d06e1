"""Camera health over JSON."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, require
from vigil.recording.health import statuses

PREFIX = "health"
router = Router(tags=["health"])


class HealthOut(Schema):
    camera: str
    name: str
    area: str
    recorder: str
    state: str
    fps: float
    bitrate_bps: float
    last_frame_at: datetime | None
    reconnects_last_hour: int
    recorded_today_s: float
    expected_today_s: float
    last_error: str


@router.get("/", response=list[HealthOut])
def health(request: HttpRequest) -> list[HealthOut]:
    require(Actor.from_request(request, via="api"), Action.HEALTH_VIEW)
    cams = cameras_for(request.user, Action.HEALTH_VIEW)  # type: ignore[arg-type]
    return [
        HealthOut(
            camera=r.code,
            name=r.name,
            area=r.area,
            recorder=r.recorder,
            state=r.state,
            fps=r.fps,
            bitrate_bps=r.bitrate_bps,
            last_frame_at=r.last_frame_at,
            reconnects_last_hour=r.reconnects_last_hour,
            recorded_today_s=r.recorded_today_s,
            expected_today_s=r.expected_today_s,
            last_error=r.last_error,
        )
        for r in statuses(cams)
    ]
