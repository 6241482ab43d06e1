"""The wall, sessions, tokens, timeline and snapshots over JSON (``/api/live/...``).

Media itself is not here: it is served by ``vigil.live.views`` under ``/live/media/``,
behind the tokens these endpoints hand out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.live import services
from vigil.live.tokens import TokenInvalid
from vigil.school.models import Camera

PREFIX = "live"
router = Router(tags=["live"])


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, via="api")


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


def _session_key(request: HttpRequest) -> str | None:
    return request.session.session_key


class WallQuery(Schema):
    layout: int = 16
    area: str = ""
    department: str = ""
    page: int = 1


class CameraTile(Schema):
    code: str
    name: str
    area: str
    department: str
    codec: str
    sub_codec: str


class WallOut(Schema):
    layout: int
    page: int
    pages: int
    total: int
    cameras: list[CameraTile]


@router.get("/wall", response=WallOut)
def wall(request: HttpRequest, q: Query[WallQuery]) -> dict[str, Any]:
    """A page of the wall: the cameras the user may watch, filtered by area or department."""
    page = services.wall_page(
        _user(request), layout=q.layout, area=q.area, department=q.department, page=q.page
    )
    return {
        "layout": page.layout,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
        "cameras": [
            {
                "code": c.code,
                "name": c.name,
                "area": c.area.code,
                "department": c.area.department.code,
                "codec": c.codec,
                "sub_codec": c.sub_codec,
            }
            for c in page.cameras
        ],
    }


@router.get("/wall/status")
def wall_status(request: HttpRequest, cameras: str = "") -> dict[str, Any]:
    """Status of cameras on the wall: live, reconnecting, offline...; tamper alerts."""
    codes = [c for c in cameras.split(",") if c]
    return services.camera_states(_user(request), codes)


class LiveIn(Schema):
    cameras: list[str]
    stream: Literal["sub", "main"] = "sub"


@router.post("/sessions")
def open_live(request: HttpRequest, payload: LiveIn) -> dict[str, Any]:
    """Open a live session (one audit entry per camera); returns the media URL."""
    try:
        opened = services.open_live(
            _actor(request), _session_key(request), payload.cameras, payload.stream
        )
    except services.LiveError as exc:
        raise HttpError(422, str(exc)) from exc
    url = f"/live/media/{opened.token}/live" if opened.token else None
    return {"token": opened.token, "url": url, "stream": opened.stream, "cameras": opened.cameras}


class PlaybackIn(Schema):
    cameras: list[str]
    day: str = ""
    start: datetime | None = None
    end: datetime | None = None


def _range(day: str, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if start is not None and end is not None:
        return start, end
    return services.day_range(day)


@router.post("/playback")
def open_playback(request: HttpRequest, payload: PlaybackIn) -> dict[str, Any]:
    """Open a playback of up to four cameras over a day or [start, end) (one audit entry
    per camera); returns a media token per camera."""
    try:
        start, end = _range(payload.day, payload.start, payload.end)
        opened = services.open_playback(
            _actor(request), _session_key(request), payload.cameras, start, end
        )
    except services.LiveError as exc:
        raise HttpError(422, str(exc)) from exc
    for item in opened["cameras"]:
        if item.get("token"):
            item["base"] = f"/live/media/{item['token']}/"
    return opened


class TokenIn(Schema):
    token: str


@router.post("/tokens/refresh")
def refresh(request: HttpRequest, payload: TokenIn) -> dict[str, Any]:
    """A fresh media token for the same session, if it is still allowed (no audit entry)."""
    try:
        return services.refresh_token(payload.token, _user(request), _session_key(request))
    except TokenInvalid as exc:
        raise HttpError(403, "invalid token") from exc


@router.get("/timeline")
def timeline(
    request: HttpRequest,
    camera: str,
    day: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Recorded spans, gaps and marks of a camera (seconds from ``start``)."""
    cam = get_object_or_404(Camera.objects.select_related("area"), code=camera)
    try:
        lo, hi = _range(day, start, end)
    except services.LiveError as exc:
        raise HttpError(422, str(exc)) from exc
    return services.timeline(_user(request), cam, lo, hi)


class SnapshotIn(Schema):
    token: str
    at: datetime | None = None


@router.post("/snapshots", response={201: dict})
def snapshot(request: HttpRequest, payload: SnapshotIn) -> Status[dict[str, Any]]:
    """Record in the audit log that a snapshot is being taken (the PNG is made by the
    browser from the picture on screen)."""
    try:
        entry = services.record_snapshot(
            _actor(request), _session_key(request), payload.token, payload.at
        )
    except TokenInvalid as exc:
        raise HttpError(403, "invalid token") from exc
    except services.LiveError as exc:
        raise HttpError(422, str(exc)) from exc
    return Status(201, {"audit": entry.seq})


@router.get("/relays")
def relays(request: HttpRequest) -> dict[str, Any]:
    """Camera streams relayed by this server, their viewers and the transcodes in use."""
    require(_actor(request), Action.HEALTH_VIEW)
    from django.conf import settings

    from vigil.live.playback import TRANSCODE_STATS
    from vigil.live.relay import hub

    sources = hub.snapshot()
    return {
        "sources": sources,
        "transcodes": sum(1 for s in sources if s["kind"] == "transcode"),
        "max_transcodes": settings.VIGIL.live.max_transcodes,
        "playback_transcodes": dict(TRANSCODE_STATS),
    }
