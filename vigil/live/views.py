"""Pages (the wall, playback) and the media endpoints behind the tokens.

Media requests never redirect to the sign-in page: without the signed-in session, a
valid token for that session, and the permission service's yes (asked again on each
request), they get 403.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, require
from vigil.live import playback, services
from vigil.live.streams import live_stream
from vigil.live.tokens import TokenInvalid

MEDIA_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _forbidden(message: str = "forbidden") -> HttpResponse:
    return JsonResponse({"detail": message}, status=403, headers=MEDIA_HEADERS)


def _messages() -> dict[str, str]:
    """Texts the player scripts show (translated here, since scripts have no catalog)."""
    return {
        "connecting": pgettext("camera status", "Connecting…"),
        "live": pgettext("camera status", "Live"),
        "reconnecting": pgettext("camera status", "Reconnecting…"),
        "offline": pgettext("camera status", "Offline"),
        "unknown": pgettext("camera status", "Status unknown"),
        "denied": _("Viewing is no longer permitted"),
        "unavailable": _("Cannot be shown"),
        "tamper": _("Tamper alert"),
        "transcoded": _("H.265 camera: transcoded for the browser"),
        "h265_substream": _("H.265 camera: showing the H.264 sub-stream"),
        "transcode_limit": _(
            "Transcoding limit reached (%(in_use)s of %(limit)s in use): showing the "
            "sub-stream if there is one"
        ),
        "transcode_busy": _("Transcoding limit reached: the footage will load shortly"),
        "unsupported": _("This browser cannot play this camera's video."),
        "no_recording": _("No recording at this time"),
        "loading": _("Loading…"),
        "snapshot_saved": _("Snapshot saved (recorded in the audit log)."),
        "snapshot_denied": _("Snapshot not permitted."),
        "not_allowed": _("Not permitted"),
        "play": _("Play"),
        "pause": _("Pause"),
    }


# ------------------------------------------------------------------------------ pages
@login_required
def wall(request: HttpRequest) -> HttpResponse:
    g = request.GET
    try:
        layout = int(g.get("layout", "16"))
        page_no = int(g.get("page", "1"))
    except ValueError:
        layout, page_no = 16, 1
    page = services.wall_page(
        request.user,  # type: ignore[arg-type]
        layout=layout,
        area=g.get("area", ""),
        department=g.get("department", ""),
        page=page_no,
    )
    context: dict[str, Any] = {
        "page": page,
        "layouts": services.LAYOUTS,
        "columns": {1: 1, 4: 2, 9: 3, 16: 4, 25: 5}[page.layout],
        "live_messages": _messages(),
        "query": {"area": page.area, "department": page.department, "layout": page.layout},
    }
    return render(request, "live/wall.html", context)


@login_required
def playback_page(request: HttpRequest) -> HttpResponse:
    allowed = cameras_for(request.user, Action.PLAYBACK).order_by("code")  # type: ignore[arg-type]
    if not allowed.exists():
        require(Actor.from_request(request), Action.PLAYBACK)  # audited refusal, then 403
    g = request.GET
    chosen = [c for c in g.getlist("camera") if c] or [
        c for c in g.get("cameras", "").split(",") if c
    ]
    chosen = list(dict.fromkeys(chosen))[: services.MAX_PLAYBACK_CAMERAS]
    if not chosen and allowed:
        first = allowed.first()
        chosen = [first.code] if first is not None else []
    day = g.get("day", "") or timezone.localdate().isoformat()
    config = {
        "cameras": chosen,
        "day": day,
        "start": g.get("start", ""),
        "end": g.get("end", ""),
        "timeZone": settings.TIME_ZONE,
        "tokenSeconds": settings.VIGIL.live.token_seconds,
    }
    context = {
        "cameras": allowed,
        "chosen": chosen,
        "day": day,
        "speeds": (1, 2, 4, 8),
        "slots": [
            (i, chosen[i] if i < len(chosen) else "") for i in range(services.MAX_PLAYBACK_CAMERAS)
        ],
        "live_messages": _messages(),
        "playback_config": config,
    }
    return render(request, "live/playback.html", context)


# ------------------------------------------------------------------------------ media
async def live_media(request: HttpRequest, token: str) -> HttpResponseBase:
    """The multiplexed live stream of a live session (see vigil.live.relay)."""
    user = await request.auser()
    session_key = request.session.session_key
    try:
        grant = await sync_to_async(services.check_live)(token, user, session_key)  # type: ignore[arg-type]
    except TokenInvalid:
        return _forbidden()
    except PermissionDenied as exc:
        return _forbidden(str(exc))
    response = StreamingHttpResponse(
        live_stream(grant, session_key),
        content_type="application/vnd.vigil.live",
        headers=MEDIA_HEADERS,
    )
    return response


def _playback_grant(request: HttpRequest, token: str) -> services.PlaybackGrant:
    return services.check_playback(
        token,
        request.user,  # type: ignore[arg-type]
        request.session.session_key,
    )


@require_GET
def playback_index(request: HttpRequest, token: str) -> HttpResponse:
    """Segments of the playback's camera in a window (seconds from the playback start)."""
    try:
        grant = _playback_grant(request, token)
        t_from = float(request.GET.get("from", "0"))
        t_to = float(request.GET.get("to", "86400"))
    except TokenInvalid:
        return _forbidden()
    except PermissionDenied as exc:
        return _forbidden(str(exc))
    except ValueError:
        return JsonResponse({"detail": "bad window"}, status=400)
    items = playback.segment_index(
        grant.camera.pk,
        origin=grant.origin,
        start=grant.start,
        end=grant.end,
        t_from=t_from,
        t_to=t_to,
    )
    return JsonResponse({"segments": items}, headers=MEDIA_HEADERS)


@require_GET
def playback_segment(request: HttpRequest, token: str, segment_id: int) -> HttpResponse:
    """One segment from the keyframe at or before ``t`` (seconds into the segment)."""
    try:
        grant = _playback_grant(request, token)
        at = max(0.0, float(request.GET.get("t", "0")))
    except TokenInvalid:
        return _forbidden()
    except PermissionDenied as exc:
        return _forbidden(str(exc))
    except ValueError:
        return JsonResponse({"detail": "bad time"}, status=400)
    segment = services.playback_segment(grant, segment_id)
    if segment is None:
        return JsonResponse({"detail": "not found"}, status=404, headers=MEDIA_HEADERS)
    try:
        out = playback.segment_bytes(segment, grant.origin, grant.start, grant.end, at)
    except playback.TranscodeBusy as exc:
        body = json.dumps({"detail": "transcode_busy", "limit": exc.limit})
        return HttpResponse(
            body,
            status=503,
            content_type="application/json",
            headers={**MEDIA_HEADERS, "Retry-After": "2"},
        )
    except playback.FootageMissing:
        return JsonResponse({"detail": "missing"}, status=410, headers=MEDIA_HEADERS)
    headers = {
        **MEDIA_HEADERS,
        "X-Vigil-Codec": out.codec,
        "X-Vigil-Offset": f"{out.offset:.3f}",
        "X-Vigil-First": f"{out.first:.3f}",
        "X-Vigil-Last": f"{out.last:.3f}",
        "X-Vigil-Transcoded": "1" if out.transcoded else "0",
    }
    return HttpResponse(out.data, content_type="video/mp4", headers=headers)


def parse_time(value: str) -> datetime | None:
    if not value:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)
