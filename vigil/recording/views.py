"""The status page: every camera's health, refreshed live."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, require
from vigil.recording.health import statuses
from vigil.recording.models import RecorderNode


@login_required
def status(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.HEALTH_VIEW)
    cams = cameras_for(request.user, Action.HEALTH_VIEW).exclude(state="decommissioned")  # type: ignore[arg-type]
    f = request.GET
    if f.get("recorder"):
        cams = cams.filter(recorder__code=f["recorder"])
    if f.get("area"):
        cams = cams.filter(area__code=f["area"])
    rows = statuses(cams)
    if f.get("state"):
        rows = [r for r in rows if r.state == f["state"]]
    counts = {
        k: sum(1 for r in rows if r.state == k) for k in ("online", "offline", "not_recorded")
    }
    context = {
        "rows": rows,
        "counts": counts,
        "nodes": RecorderNode.objects.select_related("recorder").order_by("recorder__code"),
        "filters": f,
    }
    template = (
        "recording/_status_table.html"
        if request.headers.get("HX-Request")
        else "recording/status.html"
    )
    return render(request, template, context)
