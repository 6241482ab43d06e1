"""Retention over JSON: the capacity plan, volumes, holds and coverage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import can, require
from vigil.retention import capacity, reports, services
from vigil.retention.models import Hold
from vigil.retention.volumes import capacities, free_space
from vigil.school.models import Camera, StorageVolume
from vigil.school.validation import FieldError, ValidationFailed

PREFIX = "retention"
router = Router(tags=["retention"])


class PlanQuery(Schema):
    add: list[str] = []
    remove: list[str] = []
    declared: bool = False


@router.get("/plan")
def plan(request: HttpRequest, q: Query[PlanQuery]) -> dict[str, Any]:
    require(Actor.from_request(request, via="api"), Action.STORAGE_VIEW)
    try:
        what_if = capacity.WhatIf.parse(q.add, q.remove)
        return capacity.build_plan(what_if, declared_only=q.declared).to_dict()
    except ValueError as exc:
        raise ValidationFailed([FieldError("add", str(exc))]) from exc


@router.get("/volumes")
def volumes(request: HttpRequest) -> list[dict[str, Any]]:
    require(Actor.from_request(request, via="api"), Action.STORAGE_VIEW)
    vols = list(
        StorageVolume.objects.select_related("recorder").order_by("recorder__code", "label")
    )
    caps = capacities(vols)
    out = []
    for v in vols:
        free = free_space(caps[v.pk])
        out.append(
            {
                "volume": str(v),
                "capacity_bytes": caps[v.pk].effective,
                "declared_bytes": v.capacity_bytes,
                "used_bytes": free.used,
                "free_bytes": free.free,
                "recording_allowed": services.recording_allowed(v),
                "note": caps[v.pk].note,
            }
        )
    return out


class HoldIn(Schema):
    cameras: list[str]
    start: datetime
    end: datetime
    reason: str
    source: str = ""


class ReleaseIn(Schema):
    reason: str


class HoldOut(Schema):
    id: int
    cameras: list[str]
    start: datetime
    end: datetime
    reason: str
    source: str
    placed_by: str
    placed_at: datetime
    released_at: datetime | None
    released_by: str
    release_reason: str


def _out(h: Hold) -> HoldOut:
    return HoldOut(
        id=h.pk,
        cameras=sorted(c.code for c in h.cameras.all()),
        start=h.start,
        end=h.end,
        reason=h.reason,
        source=h.source,
        placed_by=h.placed_by_name,
        placed_at=h.placed_at,
        released_at=h.released_at,
        released_by=h.released_by_name,
        release_reason=h.release_reason,
    )


@router.get("/holds", response=list[HoldOut])
def list_holds(request: HttpRequest, active: bool = True) -> list[HoldOut]:
    actor = Actor.from_request(request, via="api")
    if not (can(request.user, Action.HOLD_PLACE) or can(request.user, Action.HOLD_RELEASE)):  # type: ignore[arg-type]
        require(actor, Action.HOLD_PLACE)
    qs = Hold.objects.prefetch_related("cameras").order_by("-placed_at")
    if active:
        qs = qs.filter(released_at__isnull=True)
    return [_out(h) for h in qs[:500]]


@router.post("/holds", response={201: HoldOut})
def place(request: HttpRequest, payload: HoldIn) -> Status[HoldOut]:
    cameras = list(Camera.objects.filter(code__in=payload.cameras))
    unknown = sorted(set(payload.cameras) - {c.code for c in cameras})
    if unknown:
        raise ValidationFailed([FieldError("cameras", "unknown: " + ", ".join(unknown))])
    hold = services.place_hold(
        Actor.from_request(request, via="api"),
        cameras,
        payload.start,
        payload.end,
        payload.reason,
        source=payload.source,
    )
    return Status(201, _out(hold))


@router.post("/holds/{hold_id}/release", response=HoldOut)
def release(request: HttpRequest, hold_id: int, payload: ReleaseIn) -> HoldOut:
    hold = get_object_or_404(Hold, pk=hold_id)
    return _out(services.release_hold(Actor.from_request(request, via="api"), hold, payload.reason))


@router.get("/coverage")
def coverage_rows(request: HttpRequest, first: date, last: date | None = None) -> dict[str, Any]:
    require(Actor.from_request(request, via="api"), Action.RETENTION_REPORT)
    try:
        data = reports.report_data(first, last or first)
    except reports.ReportError as exc:
        raise ValidationFailed([FieldError("last", str(exc))]) from exc
    return {
        "from": data.first.isoformat(),
        "to": data.last.isoformat(),
        "rows": data.rows,
        "signed": {d: r.digest for d, r in data.signed.items()},
    }
