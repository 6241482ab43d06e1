"""Use cases of the live wall and playback.

Opening a live session or a playback asks the permission service with ``authorize``:
one audit entry per camera per session, with the time range. Everything after that
(media requests, token refreshes, the periodic re-check of long live streams) asks
``decide`` again, without a new audit entry, so a revoked grant, an expired range, a
camera taken out of maintenance or a signed-out session takes effect at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.audit.models import AuditEntry
from vigil.authz.rules import Action
from vigil.authz.services import AccessDenied, Decision, FootageRange, authorize, cameras_for, can
from vigil.authz.services import decide as authz_decide
from vigil.live import tokens
from vigil.live.marks import collect_marks
from vigil.live.relay import StreamTarget, hub
from vigil.media.rtsp import Credentials, split_credentials
from vigil.recording import catalog
from vigil.recording.health import NODE_TIMEOUT
from vigil.recording.models import CameraHealth, Gap, RecorderNode, Segment
from vigil.school.models import Area, Camera, Department
from vigil.school.services import stream_credentials

LAYOUTS = (1, 4, 9, 16, 25)
STREAMS = ("main", "sub")
MAX_PLAYBACK_CAMERAS = 4
MAX_PLAYBACK_SPAN = timedelta(days=7)


class LiveError(ValueError):
    """A request the live app cannot serve (bad input); the message is for the user."""


def _denied(reason: str) -> AccessDenied:
    return AccessDenied(Decision(False, reason, via="none"))


# ------------------------------------------------------------------------------- wall
@dataclass
class WallPage:
    cameras: list[Camera]
    layout: int
    page: int
    pages: int
    total: int
    area: str
    department: str
    areas: list[Area] = field(default_factory=list)
    departments: list[Department] = field(default_factory=list)


def watchable(user: User | None) -> QuerySet[Camera]:
    """Cameras this user may watch live now, by code."""
    return cameras_for(user, Action.LIVE_VIEW).order_by("code")


def wall_page(
    user: User | None, *, layout: int = 16, area: str = "", department: str = "", page: int = 1
) -> WallPage:
    """One page of the wall: the cameras the user may watch, filtered and paged."""
    if layout not in LAYOUTS:
        layout = 16
    allowed = watchable(user)
    areas = list(Area.objects.filter(cameras__in=allowed).distinct().order_by("code"))
    departments = list(
        Department.objects.filter(areas__cameras__in=allowed).distinct().order_by("code")
    )
    qs = allowed
    if area:
        qs = qs.filter(area__code=area)
    if department:
        qs = qs.filter(area__department__code=department)
    total = qs.count()
    pages = max(1, math.ceil(total / layout))
    page = min(max(1, page), pages)
    cameras = list(qs[(page - 1) * layout : page * layout])
    return WallPage(cameras, layout, page, pages, total, area, department, areas, departments)


def _relay_states() -> dict[str, dict[str, str]]:
    """camera code -> stream -> relay state, for relays running in this process."""
    out: dict[str, dict[str, str]] = {}
    for item in hub.snapshot():
        parts = item["key"].split("/")
        if len(parts) >= 2 and item["kind"] == "direct":
            out.setdefault(parts[0], {})[parts[1]] = item["state"]
    return out


def camera_states(user: User | None, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Status of the given cameras (only those the user may watch) and whether a tamper
    alert is open.

    The status is the relay's (connecting, live, reconnecting, offline) while this server
    relays the camera, else the recorder's view (live or offline; unknown without one).
    """
    from django.apps import apps

    cameras = list(watchable(user).filter(code__in=codes[:100]))
    relays = _relay_states()
    health = {h.camera_id: h for h in CameraHealth.objects.filter(camera__in=cameras)}
    # The recorder's view counts only while its node is alive (vigil.recording.health).
    alive = set(
        RecorderNode.objects.filter(
            stopped_at__isnull=True, heartbeat_at__gte=timezone.now() - NODE_TIMEOUT
        ).values_list("recorder_id", flat=True)
    )
    # A camera shows "tamper alert" while an unresolved alert whose cause starts with
    # "tamper" exists. Read through the app registry: alerts sits below live in the app
    # order, so live does not import it.
    alert_model = apps.get_model("alerts", "Alert")
    tampered = set(
        alert_model.objects.filter(
            camera__in=cameras, cause__startswith="tamper", open_key__isnull=False
        ).values_list("camera_id", flat=True)
    )
    out: dict[str, dict[str, Any]] = {}
    for cam in cameras:
        states = relays.get(cam.code, {})
        status = states.get("sub") or states.get("main") or ""
        if status in ("", "stopped"):
            h = health.get(cam.pk)
            if h is None or cam.recorder_id not in alive:
                status = "unknown"
            else:
                status = "live" if h.online else "offline"
        show_tamper = cam.pk in tampered and can(user, Action.ALERT_VIEW, cam)
        out[cam.code] = {"status": status, "tamper": show_tamper, "name": cam.name}
    return out


def _require_user(actor: Actor) -> User:
    if actor.user is None:
        raise _denied(_("Please sign in."))
    return actor.user


# ------------------------------------------------------------------------------ live
@dataclass
class LiveOpened:
    token: str | None
    stream: str
    cameras: list[dict[str, Any]]


def open_live(actor: Actor, session_key: str | None, codes: list[str], stream: str) -> LiveOpened:
    """Open a live session on ``codes`` (one audit entry per camera)."""
    user = _require_user(actor)
    if stream not in STREAMS:
        raise LiveError(_("Unknown stream."))
    codes = list(dict.fromkeys(c for c in codes if c))[: max(LAYOUTS)]
    if not codes:
        raise LiveError(_("No camera chosen."))
    found = {c.code: c for c in Camera.objects.select_related("area").filter(code__in=codes)}
    now = timezone.now()
    channels: list[list[int]] = []
    out: list[dict[str, Any]] = []
    for index, code in enumerate(codes):
        camera = found.get(code)
        if camera is None:
            out.append(
                {"code": code, "channel": index, "allowed": False, "reason": _("Not found.")}
            )
            continue
        decision = authorize(actor, Action.LIVE_VIEW, FootageRange(camera, now))
        out.append(
            {
                "code": code,
                "name": camera.name,
                "channel": index,
                "allowed": decision.allowed,
                "reason": str(decision.reason),
            }
        )
        if decision.allowed:
            channels.append([camera.pk, index, decision.audit_seq or 0])
    token = None
    if channels:
        token = tokens.issue(
            {"k": "live", "s": tokens.session_tag(session_key), "u": user.pk, "m": stream,
             "c": channels}
        )  # fmt: skip
    return LiveOpened(token, stream, out)


@dataclass
class LiveChannel:
    camera_id: int
    code: str
    channel: int
    audit_seq: int
    stream: str
    target: StreamTarget
    fallback: StreamTarget | None  # the H.264 sub-stream, for an H.265 main stream


@dataclass
class LiveGrant:
    user_id: int
    stream: str
    channels: list[LiveChannel]


def _target(camera: Camera, stream: str) -> StreamTarget:
    url = camera.main_url if stream == "main" else (camera.sub_url or camera.main_url)
    clean, embedded = split_credentials(url)
    username, password = stream_credentials(camera)
    creds = Credentials(username, password) if (username or password) else embedded
    return StreamTarget(clean, creds)


def check_live(token: str, user: User | None, session_key: str | None) -> LiveGrant:
    """What a live media request may stream (raises AccessDenied / TokenInvalid)."""
    if user is None or not user.is_authenticated:
        raise _denied(_("Please sign in."))
    payload = tokens.read(token, session_key=session_key, user_id=user.pk)
    if payload.get("k") != "live":
        raise tokens.TokenInvalid("not a live token")
    stream = str(payload.get("m", "sub"))
    entries = {int(c[0]): (int(c[1]), int(c[2])) for c in payload.get("c", [])}
    channels = []
    for camera in Camera.objects.filter(pk__in=entries).select_related("credential"):
        if not authz_decide(user, Action.LIVE_VIEW, camera).allowed:
            continue
        index, seq = entries[camera.pk]
        fallback = _target(camera, "sub") if stream == "main" and camera.sub_url else None
        channels.append(
            LiveChannel(
                camera.pk, camera.code, index, seq, stream, _target(camera, stream), fallback
            )
        )
    if not channels:
        raise _denied(_("You may no longer watch these cameras."))
    channels.sort(key=lambda c: c.channel)
    return LiveGrant(user.pk, stream, channels)


def session_alive(session_key: str | None, user_id: int) -> User | None:
    """The user, if the browser session is still signed in as them and not expired."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from vigil.core.middleware import AUTH_AT_KEY

    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()
    if str(data.get("_auth_user_id", "")) != str(user_id):
        return None
    started = data.get(AUTH_AT_KEY)
    if (
        started is not None
        and time.time() - float(started) > settings.VIGIL_ABSOLUTE_SESSION_SECONDS
    ):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    if user.requires_two_factor and not data.get(DEVICE_ID_SESSION_KEY):
        return None
    return user


def recheck_live(grant: LiveGrant, session_key: str | None) -> set[int]:
    """Camera ids of ``grant`` the session may still watch (no audit)."""
    user = session_alive(session_key, grant.user_id)
    if user is None:
        return set()
    ids = [c.camera_id for c in grant.channels]
    return {
        cam.pk
        for cam in Camera.objects.filter(pk__in=ids).select_related("area")
        if authz_decide(user, Action.LIVE_VIEW, cam).allowed
    }


# -------------------------------------------------------------------------- playback
@dataclass
class PlaybackGrant:
    camera: Camera
    start: datetime
    end: datetime
    origin: datetime
    audit_seq: int


def day_range(day: str | None, tz: Any = None) -> tuple[datetime, datetime]:
    """UTC [start, end) of a local calendar day (today when ``day`` is empty)."""
    zone = tz or timezone.get_current_timezone()
    if day:
        try:
            d = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError as exc:
            raise LiveError(_("The day must be written YYYY-MM-DD.")) from exc
    else:
        d = timezone.localdate()
    start = datetime(d.year, d.month, d.day, tzinfo=zone)
    end = start + timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _clean_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise LiveError(_("Times need a time zone."))
    now = timezone.now()
    end = min(end, now)
    if end <= start:
        raise LiveError(_("There is no footage in the future."))
    if end - start > MAX_PLAYBACK_SPAN:
        raise LiveError(_("Play back at most seven days at once."))
    return start.astimezone(UTC), end.astimezone(UTC)


def open_playback(
    actor: Actor, session_key: str | None, codes: list[str], start: datetime, end: datetime
) -> dict[str, Any]:
    """Open a playback of up to four cameras over [start, end) (one audit entry each)."""
    user = _require_user(actor)
    codes = list(dict.fromkeys(c for c in codes if c))
    if not codes:
        raise LiveError(_("No camera chosen."))
    if len(codes) > MAX_PLAYBACK_CAMERAS:
        raise LiveError(_("Play back at most four cameras together."))
    start, end = _clean_range(start, end)
    found = {c.code: c for c in Camera.objects.select_related("area").filter(code__in=codes)}
    items = []
    for code in codes:
        camera = found.get(code)
        if camera is None:
            items.append({"code": code, "allowed": False, "reason": _("Not found.")})
            continue
        decision = authorize(actor, Action.PLAYBACK, FootageRange(camera, start, end))
        item: dict[str, Any] = {
            "code": code,
            "name": camera.name,
            "allowed": decision.allowed,
            "reason": str(decision.reason),
        }
        if decision.allowed:
            item["token"] = tokens.issue(
                {"k": "pb", "s": tokens.session_tag(session_key), "u": user.pk, "c": camera.pk,
                 "a": start.timestamp(), "b": end.timestamp(), "e": decision.audit_seq}
            )  # fmt: skip
        items.append(item)
    return {"start": start, "end": end, "cameras": items}


def _played(payload: dict[str, Any]) -> tuple[Camera, datetime, datetime]:
    """The camera and time range a playback token is for."""
    if payload.get("k") != "pb":
        raise tokens.TokenInvalid("not a playback token")
    camera = Camera.objects.select_related("area").filter(pk=payload.get("c")).first()
    if camera is None:
        raise _denied(_("Not found."))
    start = datetime.fromtimestamp(float(payload["a"]), tz=UTC)
    end = datetime.fromtimestamp(float(payload["b"]), tz=UTC)
    return camera, start, end


def _playback_grant(payload: dict[str, Any], user: User) -> PlaybackGrant:
    camera, start, end = _played(payload)
    decision = authz_decide(user, Action.PLAYBACK, FootageRange(camera, start, end))
    if not decision.allowed:
        raise AccessDenied(decision)
    return PlaybackGrant(camera, start, end, start, int(payload.get("e", 0)))


def check_playback(token: str, user: User | None, session_key: str | None) -> PlaybackGrant:
    """What a playback media request may read (raises AccessDenied / TokenInvalid)."""
    if user is None or not user.is_authenticated:
        raise _denied(_("Please sign in."))
    payload = tokens.read(token, session_key=session_key, user_id=user.pk)
    return _playback_grant(payload, user)


def playback_segment(grant: PlaybackGrant, segment_id: int) -> Segment | None:
    """The recorded segment ``segment_id`` if the playback may read it: a segment of the
    grant's camera overlapping the grant's time range (None otherwise)."""
    return (
        Segment.objects.select_related("volume")
        .filter(pk=segment_id, camera=grant.camera, start__lt=grant.end, end__gt=grant.start)
        .first()
    )


def refresh_token(token: str, user: User | None, session_key: str | None) -> dict[str, Any]:
    """A fresh token for the same session and footage, if still allowed (no audit entry).

    The old token may have expired, but not by more than the absolute session lifetime."""
    if user is None or not user.is_authenticated:
        raise _denied(_("Please sign in."))
    payload = tokens.read(
        token,
        session_key=session_key,
        user_id=user.pk,
        max_age=settings.VIGIL_ABSOLUTE_SESSION_SECONDS,
    )
    if payload.get("k") == "live":
        allowed = []
        ids = [int(c[0]) for c in payload.get("c", [])]
        cams = {c.pk: c for c in Camera.objects.filter(pk__in=ids).select_related("area")}
        for entry in payload.get("c", []):
            cam = cams.get(int(entry[0]))
            if cam is not None and authz_decide(user, Action.LIVE_VIEW, cam).allowed:
                allowed.append(entry)
        if not allowed:
            raise _denied(_("You may no longer watch these cameras."))
        payload["c"] = allowed
        return {"token": tokens.issue(payload), "channels": [int(e[1]) for e in allowed]}
    if payload.get("k") == "pb":
        _playback_grant(payload, user)
        return {"token": tokens.issue(payload), "channels": []}
    raise tokens.TokenInvalid("unknown kind")


def record_snapshot(
    actor: Actor, session_key: str | None, token: str, at: datetime | None
) -> AuditEntry:
    """Audit a snapshot taken from a live or playback session the actor holds.

    Decided and audited by the permission service (``footage.snapshot``, as the live
    view or playback it is taken from), so a refused snapshot is audited too."""
    user = _require_user(actor)
    payload = tokens.read(
        token,
        session_key=session_key,
        user_id=user.pk,
        max_age=settings.VIGIL_ABSOLUTE_SESSION_SECONDS,
    )
    resource: FootageRange
    detail: dict[str, Any]
    if payload.get("k") == "pb":
        camera, start, end = _played(payload)
        if at is None or not start <= at <= end:
            raise LiveError(_("The snapshot time is outside the footage played."))
        resource = FootageRange(camera, start, end)
        detail = {"kind": "playback", "at": at.isoformat(), "session": payload.get("e") or None}
    elif payload.get("k") == "live":
        ids = [int(c[0]) for c in payload.get("c", [])]
        if len(ids) != 1:
            raise LiveError(_("Take a snapshot from one camera's view."))
        found = Camera.objects.select_related("area").filter(pk=ids[0]).first()
        if found is None:
            raise _denied(_("You may no longer watch this camera."))
        at = at or timezone.now()
        resource = FootageRange(found, at)
        detail = {"kind": "live", "at": at.isoformat(), "session": payload["c"][0][2]}
    else:
        raise tokens.TokenInvalid("unknown kind")
    decision = authorize(actor, Action.SNAPSHOT, resource, detail=detail)
    if not decision.allowed:
        raise AccessDenied(decision)
    return AuditEntry.objects.get(seq=decision.audit_seq)


def timeline(user: User | None, camera: Camera, start: datetime, end: datetime) -> dict[str, Any]:
    """Recorded spans, gaps (with their cause) and marks of a camera over [start, end)."""
    decision = authz_decide(user, Action.PLAYBACK, FootageRange(camera, start, end))
    if not decision.allowed:
        raise AccessDenied(decision)
    found = catalog.camera_timeline(camera.pk, start, end)
    t0, length = start.timestamp(), (end - start).total_seconds()
    causes = dict(Gap.Cause.choices)

    def rel(t: datetime | float | None) -> float | None:
        if t is None:
            return None
        seconds = (t.timestamp() if isinstance(t, datetime) else t) - t0
        return round(min(max(seconds, 0.0), length), 3)

    return {
        "camera": camera.code,
        "start": start,
        "end": end,
        "spans": [[rel(s), rel(e)] for s, e in found.spans(tolerance=0.5)],
        "gaps": [
            {
                "start": rel(g_start),
                "end": rel(g_end if g_end is not None else end),
                "cause": cause,
                "label": str(causes.get(cause, cause)),
            }
            for g_start, g_end, cause in found.gaps
        ],
        "marks": [
            {**m, "start": rel(m["start"]), "end": rel(m.get("end"))}
            for m in collect_marks(camera, start, end)
        ],
    }
