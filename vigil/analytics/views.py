"""Motion search, the image-quality maintenance list, and per-camera analysis settings."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from vigil.accounts.actor import Actor
from vigil.analytics import services
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, require
from vigil.school.models import Area, Camera


def _parse_local(day: str, clock: str, default: datetime) -> datetime:
    try:
        d = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError:
        return default
    try:
        t = datetime.strptime(clock, "%H:%M").time() if clock else time(0, 0)
    except ValueError:
        t = time(0, 0)
    return timezone.make_aware(datetime.combine(d, t))


def _playback_base() -> str:
    try:
        return reverse("live:playback")
    except NoReverseMatch:
        return ""


@login_required
def motion(request: HttpRequest) -> HttpResponse:
    """Motion events by camera, area and time range. Showing them is playback of those
    cameras over that range: one audited decision per search."""
    actor = Actor.from_request(request)
    g = request.GET
    now = timezone.localtime()
    default_start = now - timedelta(hours=2)
    start = _parse_local(g.get("from_day", ""), g.get("from_time", ""), default_start)
    end = _parse_local(g.get("to_day", ""), g.get("to_time", ""), now + timedelta(minutes=1))
    if "to_day" in g and not g.get("to_time"):
        end = end + timedelta(days=1)
    allowed = cameras_for(request.user, Action.PLAYBACK).order_by("code")  # type: ignore[arg-type]
    chosen = [c for c in g.getlist("camera") if c]
    cams = list(allowed.filter(code__in=chosen)) if chosen else None
    error = ""
    result = None
    try:
        result = services.search_motion(
            actor, start=start, end=end, cameras=cams, area_code=g.get("area", ""),
            zone=g.get("zone", "").strip(),
        )  # fmt: skip
    except ValueError as exc:
        error = str(exc)
    rows: list[dict[str, Any]] = []
    playback = _playback_base()
    if result is not None:
        for ev in result.events:
            local = timezone.localtime(ev.start)
            rows.append(
                {
                    "event": ev,
                    "thumb": services.thumbnail_token(request.user, ev) if ev.has_thumbnail else "",  # type: ignore[arg-type]
                    "playback": (
                        f"{playback}?camera={ev.camera.code}&day={local:%Y-%m-%d}"
                        f"&start={local - timedelta(seconds=5):%H:%M:%S}"
                        if playback
                        else ""
                    ),
                }
            )
    context = {
        "result": result,
        "rows": rows,
        "error": error,
        "cameras": allowed,
        "chosen": chosen,
        "areas": Area.objects.filter(cameras__in=allowed).distinct().order_by("code"),
        "f": {
            "from_day": timezone.localtime(start).strftime("%Y-%m-%d"),
            "from_time": timezone.localtime(start).strftime("%H:%M"),
            "to_day": timezone.localtime(end).strftime("%Y-%m-%d"),
            "to_time": timezone.localtime(end).strftime("%H:%M"),
            "area": g.get("area", ""),
            "zone": g.get("zone", ""),
        },
    }
    return render(request, "analytics/motion.html", context)


@login_required
def thumbnail(request: HttpRequest, token: str) -> HttpResponse:
    data = services.thumbnail_for(request.user, token)  # type: ignore[arg-type]
    if data is None:
        raise Http404
    resp = HttpResponse(data, content_type="image/jpeg")
    resp["Cache-Control"] = "private, max-age=900"
    return resp


@login_required
def quality(request: HttpRequest) -> HttpResponse:
    """Cameras whose image quality failed recently: the maintenance list (Art. 8.2)."""
    require(Actor.from_request(request), Action.HEALTH_VIEW)
    items = services.maintenance_list(request.user)  # type: ignore[arg-type]
    cams = cameras_for(request.user, Action.HEALTH_VIEW).exclude(state="decommissioned")  # type: ignore[arg-type]
    status = services.status_for(cams)
    context = {
        "items": items,
        "analysed": sum(1 for s in status.values() if s.online),
        "cameras": cams.count(),
    }
    return render(request, "analytics/quality.html", context)


def _camera(code: str) -> Camera:
    return get_object_or_404(Camera.objects.select_related("area"), code=code)


@login_required
@require_POST
def camera_settings(request: HttpRequest, code: str) -> HttpResponse:
    camera = _camera(code)
    p = request.POST
    try:
        services.update_settings(
            Actor.from_request(request),
            camera,
            motion_enabled=p.get("motion_enabled") == "on",
            tamper_enabled=p.get("tamper_enabled") == "on",
            threshold=int(p.get("threshold", "30") or 30),
            masks=json.loads(p.get("masks", "[]") or "[]"),
            zones=json.loads(p.get("zones", "{}") or "{}"),
        )
        messages.success(request, _("Analysis settings saved; they apply within seconds."))
    except (ValueError, json.JSONDecodeError) as exc:
        messages.error(request, str(exc))
    return redirect("school:camera_detail", code=camera.code)


@login_required
@require_POST
def accept_view(request: HttpRequest, code: str) -> HttpResponse:
    camera = _camera(code)
    services.accept_view(Actor.from_request(request), camera, request.POST.get("note", ""))
    messages.success(request, _("The current view is now the camera's reference view."))
    return redirect("school:camera_detail", code=camera.code)


@login_required
def camera_view(request: HttpRequest, code: str) -> HttpResponse:
    """The camera's latest view (for drawing masks and zones): a live picture, so it is
    a live view, decided and audited as one."""
    data = services.latest_view(Actor.from_request(request), _camera(code))
    if data is None:
        raise Http404
    resp = HttpResponse(data, content_type="image/jpeg")
    resp["Cache-Control"] = "private, no-store"
    return resp


def denied(request: HttpRequest) -> HttpResponse:  # pragma: no cover - helper for errors
    raise PermissionDenied
