"""The alerts pages: the live list for the desk, one alert with its pictures and history,
acknowledge and resolve, and the badge in the header."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from vigil.accounts.actor import Actor
from vigil.alerts import services
from vigil.alerts.causes import CAUSE_LABELS
from vigil.alerts.models import Alert, Severity
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.school.models import Area

STATES = ("unresolved", "open", "acknowledged", "resolved", "all")
PAGE = 200


def _filtered(request: HttpRequest) -> tuple[list[Alert], dict[str, str]]:
    f = {k: request.GET.get(k, "") for k in ("state", "severity", "cause", "area", "camera")}
    f["state"] = f["state"] if f["state"] in STATES else "unresolved"
    qs = services.visible_alerts(request.user)  # type: ignore[arg-type]
    if f["state"] == "unresolved":
        qs = qs.exclude(state=Alert.State.RESOLVED)
    elif f["state"] != "all":
        qs = qs.filter(state=f["state"])
    if f["severity"] in Severity.values:
        qs = qs.filter(severity=f["severity"])
    if f["cause"] == "tamper":
        qs = qs.filter(cause__startswith="tamper")
    elif f["cause"]:
        qs = qs.filter(cause=f["cause"])
    if f["area"]:
        qs = qs.filter(camera__area__code=f["area"])
    if f["camera"]:
        qs = qs.filter(camera__code=f["camera"])
    rows = list(qs.order_by("-opened_at")[:PAGE])
    rank = {Alert.State.OPEN: 0, Alert.State.ACKNOWLEDGED: 1, Alert.State.RESOLVED: 2}
    sev = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    rows.sort(key=lambda a: (rank.get(a.state, 3), sev.get(a.severity, 3)))  # type: ignore[call-overload]
    return rows, f


def _expired(request: HttpRequest) -> HttpResponse | None:
    """A page left open past the session: htmx polls get the sign-in page as a redirect
    of the whole page, not swapped into a table or the header badge."""
    if request.user.is_authenticated:
        return None
    resp = HttpResponse("")
    if request.headers.get("HX-Request"):
        resp["HX-Redirect"] = reverse("accounts:login")
    return resp


def alert_list(request: HttpRequest) -> HttpResponse:
    if request.headers.get("HX-Request") and (expired := _expired(request)) is not None:
        return expired
    return _alert_list(request)


@login_required
def _alert_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.ALERT_VIEW)
    rows, f = _filtered(request)
    context = {
        "rows": rows,
        "filters": f,
        "states": STATES,
        "causes": sorted(CAUSE_LABELS.items()),
        "areas": Area.objects.order_by("code"),
        "now": timezone.now(),
        "counts": {
            "open": sum(1 for a in rows if a.state == Alert.State.OPEN),
            "acknowledged": sum(1 for a in rows if a.state == Alert.State.ACKNOWLEDGED),
        },
    }
    template = "alerts/_table.html" if request.headers.get("HX-Request") else "alerts/list.html"
    return render(request, template, context)


def badge(request: HttpRequest) -> HttpResponse:
    """How many alerts nobody has acknowledged yet (refreshed in the header)."""
    if (expired := _expired(request)) is not None:
        return expired
    qs = services.visible_alerts(request.user).filter(state=Alert.State.OPEN)  # type: ignore[arg-type]
    count = qs.count()
    critical = qs.filter(severity=Severity.CRITICAL).exists()
    return render(request, "alerts/_badge.html", {"count": count, "critical": critical})


def _get(request: HttpRequest, pk: int) -> Alert:
    alert = services.visible_alerts(request.user).filter(pk=pk).first()  # type: ignore[arg-type]
    if alert is None:
        raise Http404
    return alert


def _playback_url(alert: Alert) -> str:
    if alert.camera is None:
        return ""
    try:
        base = reverse("live:playback")
    except NoReverseMatch:
        return ""
    local = timezone.localtime(alert.opened_at)
    start = timezone.localtime(services.snapshot_range(alert)[0])
    return f"{base}?camera={alert.camera.code}&day={local:%Y-%m-%d}&start={start:%H:%M:%S}"


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.ALERT_VIEW)
    alert = _get(request, pk)
    tokens = services.snapshot_tokens(actor, alert)
    context = {
        "alert": alert,
        "tokens": tokens,
        "pictures_hidden": tokens is None and bool(alert.snapshot_before or alert.snapshot_after),
        "may_handle": services.may_handle(request.user, alert),  # type: ignore[arg-type]
        "history": services.history(alert),
        "deadlines": services.escalation_deadlines(alert),
        "playback_url": _playback_url(alert),
    }
    return render(request, "alerts/detail.html", context)


@login_required
@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _get(request, pk)
    try:
        services.acknowledge(Actor.from_request(request), alert, request.POST.get("note", ""))
        messages.success(request, _("Alert acknowledged."))
    except services.AlertStateError as exc:
        messages.error(request, str(exc))
    if request.POST.get("next") == "list":
        return redirect("alerts:list")
    return redirect(reverse("alerts:detail", args=[alert.pk]))


@login_required
@require_POST
def resolve(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _get(request, pk)
    try:
        services.resolve(Actor.from_request(request), alert, request.POST.get("note", ""))
        messages.success(request, _("Alert resolved."))
    except services.AlertStateError as exc:
        messages.error(request, str(exc))
    return redirect(reverse("alerts:detail", args=[alert.pk]))


@login_required
def snapshot(request: HttpRequest, token: str) -> HttpResponse:
    data = services.snapshot_for(request.user, token)  # type: ignore[arg-type]
    if data is None:
        raise Http404
    resp = HttpResponse(data, content_type="image/jpeg")
    resp["Cache-Control"] = "private, max-age=600"
    return resp
