"""Alerts over JSON: list, one alert, acknowledge, resolve (same rules as the pages)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from vigil.accounts.actor import Actor
from vigil.alerts import services
from vigil.alerts.causes import cause_label
from vigil.alerts.models import Alert
from vigil.authz.rules import Action
from vigil.authz.services import require

PREFIX = "alerts"
router = Router(tags=["alerts"])


class AlertOut(Schema):
    id: int
    cause: str
    cause_label: str
    severity: str
    state: str
    title: str
    message: str
    camera: str | None
    area: str | None
    department: str | None
    recorder: str | None
    opened_at: datetime
    last_seen_at: datetime
    condition_ended_at: datetime | None
    occurrences: int
    escalation_level: int
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str


class NoteIn(Schema):
    note: str = ""


def _out(a: Alert) -> AlertOut:
    return AlertOut(
        id=a.pk,
        cause=a.cause,
        cause_label=cause_label(a.cause),
        severity=a.severity,
        state=a.state,
        title=a.title,
        message=a.message,
        camera=a.camera.code if a.camera else None,
        area=a.camera.area.code if a.camera else None,
        department=a.department.code if a.department else None,
        recorder=a.recorder.code if a.recorder else None,
        opened_at=a.opened_at,
        last_seen_at=a.last_seen_at,
        condition_ended_at=a.condition_ended_at,
        occurrences=a.occurrences,
        escalation_level=a.escalation_level,
        acknowledged_by=a.acknowledged_by.get_username() if a.acknowledged_by else None,
        acknowledged_at=a.acknowledged_at,
        resolved_by=a.resolved_by.get_username() if a.resolved_by else None,
        resolved_at=a.resolved_at,
        resolution_note=a.resolution_note,
    )


def _get(request: HttpRequest, pk: int) -> Alert:
    alert = services.visible_alerts(request.user).filter(pk=pk).first()  # type: ignore[arg-type]
    if alert is None:
        raise HttpError(404, "no such alert")
    return alert


@router.get("/", response=list[AlertOut])
def alerts(request: HttpRequest, state: str = "unresolved", camera: str = "") -> list[AlertOut]:
    require(Actor.from_request(request, via="api"), Action.ALERT_VIEW)
    qs = services.visible_alerts(request.user)  # type: ignore[arg-type]
    if state == "unresolved":
        qs = qs.exclude(state=Alert.State.RESOLVED)
    elif state in Alert.State.values:
        qs = qs.filter(state=state)
    if camera:
        qs = qs.filter(camera__code=camera)
    return [_out(a) for a in qs.order_by("-opened_at")[:500]]


@router.get("/{pk}", response=AlertOut)
def alert(request: HttpRequest, pk: int) -> AlertOut:
    require(Actor.from_request(request, via="api"), Action.ALERT_VIEW)
    return _out(_get(request, pk))


@router.post("/{pk}/acknowledge", response=AlertOut)
def acknowledge(request: HttpRequest, pk: int, body: NoteIn) -> AlertOut:
    try:
        a = services.acknowledge(
            Actor.from_request(request, via="api"), _get(request, pk), body.note
        )
    except services.AlertStateError as exc:
        raise HttpError(409, str(exc)) from exc
    return _out(a)


@router.post("/{pk}/resolve", response=AlertOut)
def resolve(request: HttpRequest, pk: int, body: NoteIn) -> AlertOut:
    try:
        a = services.resolve(Actor.from_request(request, via="api"), _get(request, pk), body.note)
    except services.AlertStateError as exc:
        raise HttpError(409, str(exc)) from exc
    return _out(a)
