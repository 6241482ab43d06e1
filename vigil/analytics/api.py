"""Motion events and image quality over JSON."""

from __future__ import annotations

import json
from datetime import date, datetime

from django.http import HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from vigil.accounts.actor import Actor
from vigil.analytics import services
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, require
from vigil.school.models import Camera

PREFIX = "analytics"
router = Router(tags=["analytics"])


class MotionQuery(Schema):
    start: datetime
    end: datetime
    camera: list[str] = []
    area: str = ""
    zone: str = ""


class MotionOut(Schema):
    id: int
    camera: str
    area: str
    start: datetime
    end: datetime | None
    peak_at: datetime
    peak_score: float
    zones: list[str]
    box: list[float]
    thumbnail: str | None


class MotionResultOut(Schema):
    events: list[MotionOut]
    cameras: list[str]
    refused: list[str]
    truncated: bool


class QualityDayOut(Schema):
    camera: str
    day: date
    samples: int
    score: float
    worst: float
    pass_rate: float
    passed: bool
    issues: list[dict]


@router.get("/motion", response=MotionResultOut)
def motion(request: HttpRequest, q: Query[MotionQuery]) -> MotionResultOut:
    """Motion events (one audited playback decision for the whole search)."""
    actor = Actor.from_request(request, via="api")
    cams = list(Camera.objects.filter(code__in=q.camera)) if q.camera else None
    try:
        result = services.search_motion(
            actor, start=q.start, end=q.end, cameras=cams, area_code=q.area, zone=q.zone
        )
    except ValueError as exc:
        raise HttpError(422, str(exc)) from exc
    user = request.user
    return MotionResultOut(
        events=[
            MotionOut(
                id=e.pk,
                camera=e.camera.code,
                area=e.camera.area.code,
                start=e.start,
                end=e.end,
                peak_at=e.peak_at,
                peak_score=e.peak_score,
                zones=e.zone_list,
                box=[float(v) for v in json.loads(e.box_json)],
                thumbnail=(
                    reverse(
                        "analytics:thumbnail",
                        args=[services.thumbnail_token(user, e)],  # type: ignore[arg-type]
                    )
                    if e.has_thumbnail
                    else None
                ),
            )
            for e in result.events
        ],
        cameras=[c.code for c in result.allowed],
        refused=[c.code for c in result.refused],
        truncated=result.truncated,
    )


@router.get("/quality/{code}", response=list[QualityDayOut])
def quality(request: HttpRequest, code: str, days: int = 14) -> list[QualityDayOut]:
    camera = cameras_for(request.user, Action.HEALTH_VIEW).filter(code=code).first()  # type: ignore[arg-type]
    require(Actor.from_request(request, via="api"), Action.HEALTH_VIEW, camera)
    if camera is None:
        raise HttpError(404, "no such camera")
    return [
        QualityDayOut(
            camera=camera.code,
            day=d.day,
            samples=d.samples,
            score=d.score,
            worst=d.worst,
            pass_rate=d.pass_rate,
            passed=d.passed,
            issues=d.issues,
        )
        for d in services.quality_days(camera, min(max(days, 1), 366))
    ]
