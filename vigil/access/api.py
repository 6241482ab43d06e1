"""Footage requests over JSON: the same use cases as the pages, the same permission
service (``/api/requests/...``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Schema, Status

from vigil.access import services
from vigil.access.models import ExportJob, FootageRequest, Package
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.authz.models import Grant
from vigil.school.models import Camera, Department
from vigil.school.validation import FieldError, ValidationFailed

PREFIX = "requests"
router = Router(tags=["requests"])


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, via="api")


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _visible(request: HttpRequest, pk: int) -> FootageRequest:
    req = get_object_or_404(FootageRequest, pk=pk)
    if not services.can_view(_user(request), req):
        raise Http404
    return req


class RequestIn(Schema):
    kind: str
    form: str
    purpose: str
    cameras: list[str]
    start: datetime
    end: datetime
    subject: str = ""
    department: str = ""
    recipient: str = ""
    requester: str = ""


class ApproveIn(Schema):
    note: str = ""
    grant_days: int | None = None
    extractor: str = ""
    redact: bool | None = None
    redact_persons: bool | None = None
    watermark: bool | None = None


class ReasonIn(Schema):
    reason: str


class ExportIn(Schema):
    keep: list[list[float]] = []


def _grant(g: Grant) -> dict[str, Any]:
    return {
        "id": g.pk,
        "grantee": g.grantee.get_username(),
        "actions": g.action_list,
        "cameras": sorted(c.code for c in g.cameras.all()),
        "footage_start": g.footage_start,
        "footage_end": g.footage_end,
        "valid_from": g.valid_from,
        "valid_until": g.valid_until,
        "revoked_at": g.revoked_at,
        "revoke_reason": g.revoke_reason,
    }


def _job(j: ExportJob) -> dict[str, Any]:
    return {
        "id": j.pk,
        "request": j.request.number,
        "state": j.state,
        "progress": j.progress,
        "stage": j.stage,
        "attempts": j.attempts,
        "error": j.error,
        "created_by": j.created_by.get_username(),
        "created_at": j.created_at,
        "finished_at": j.finished_at,
        "package": Package.objects.filter(job=j).values_list("pk", flat=True).first(),
    }


def _out(request: HttpRequest, req: FootageRequest, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": req.pk,
        "number": req.number,
        "kind": req.kind,
        "form": req.form,
        "status": req.status,
        "requester": req.requester.get_username(),
        "purpose": req.purpose,
        "subject": req.subject,
        "recipient": req.recipient,
        "cameras": sorted(c.code for c in req.cameras.all()),
        "footage_start": req.footage_start,
        "footage_end": req.footage_end,
        "submitted_at": req.submitted_at,
        "approvals_needed": req.approvals_needed,
        "refusal_reason": req.refusal_reason,
        "reply_due": req.reply_due,
        "access_due": req.access_due,
        "replied_at": req.replied_at,
        "provided_at": req.provided_at,
    }
    if full:
        user = _user(request)
        out["decisions"] = [
            {
                "by": d.decided_by.get_username(),
                "on_behalf_of": d.on_behalf_of.get_username() if d.on_behalf_of else None,
                "verdict": d.verdict,
                "reason": d.reason,
                "at": d.decided_at,
            }
            for d in req.decisions.select_related("decided_by", "on_behalf_of")
        ]
        out["grants"] = [_grant(g) for g in services.request_grants(req)]
        out["exports"] = [_job(j) for j in req.exports.select_related("created_by", "request")]
        out["packages"] = [
            {
                "id": p.pk,
                "name": p.name,
                "created_at": p.created_at,
                "manifest_sha256": p.manifest_sha256,
                "size_bytes": p.size_bytes,
                "redacted": p.redacted,
                "may_download": services.may_download(user, p),
            }
            for p in req.packages.all()
        ]
    return out


@router.get("")
def list_requests(request: HttpRequest) -> list[dict[str, Any]]:
    return [_out(request, r) for r in services.list_requests(_actor(request))[:500]]


@router.post("", response={201: dict[str, Any]})
def file(request: HttpRequest, payload: RequestIn) -> Status[dict[str, Any]]:
    cameras = list(Camera.objects.filter(code__in=payload.cameras))
    unknown = sorted(set(payload.cameras) - {c.code for c in cameras})
    if unknown:
        raise ValidationFailed([FieldError("cameras", "unknown: " + ", ".join(unknown))])
    requester = None
    if payload.requester:
        requester = User.objects.filter(username=payload.requester).first()
        if requester is None:
            raise ValidationFailed([FieldError("requester", "no such user")])
    req = services.file_request(
        _actor(request),
        kind=payload.kind,
        form=payload.form,
        purpose=payload.purpose,
        cameras=cameras,
        start=payload.start,
        end=payload.end,
        subject=payload.subject,
        department=Department.objects.filter(code=payload.department).first()
        if payload.department
        else None,
        recipient=payload.recipient,
        requester=requester,
    )
    return Status(201, _out(request, req, full=True))


@router.get("/{int:pk}")
def detail(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _out(request, _visible(request, pk), full=True)


@router.post("/{int:pk}/approve")
def approve(request: HttpRequest, pk: int, payload: ApproveIn) -> dict[str, Any]:
    req = services.approve(
        _actor(request),
        _visible(request, pk),
        reason=payload.note,
        grant_days=payload.grant_days,
        extractor=payload.extractor or None,  # an unknown name is refused, not replaced
        redact=payload.redact,
        redact_persons=payload.redact_persons,
        watermark=payload.watermark,
    )
    return _out(request, req, full=True)


@router.post("/{int:pk}/refuse")
def refuse(request: HttpRequest, pk: int, payload: ReasonIn) -> dict[str, Any]:
    req = services.refuse(_actor(request), _visible(request, pk), payload.reason)
    return _out(request, req, full=True)


@router.post("/{int:pk}/withdraw")
def withdraw(request: HttpRequest, pk: int) -> dict[str, Any]:
    req = services.withdraw(_actor(request), _visible(request, pk))
    return _out(request, req, full=True)


@router.post("/{int:pk}/exports", response={201: dict[str, Any]})
def start_export(request: HttpRequest, pk: int, payload: ExportIn) -> Status[dict[str, Any]]:
    job = services.create_export(_actor(request), _visible(request, pk), keep=payload.keep)
    return Status(201, _job(job))


def _job_visible(request: HttpRequest, pk: int) -> ExportJob:
    job = get_object_or_404(ExportJob.objects.select_related("request", "created_by"), pk=pk)
    if not services.can_view(_user(request), job.request):
        raise Http404
    return job


@router.get("/exports/{int:pk}")
def export_status(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _job(_job_visible(request, pk))


@router.post("/exports/{int:pk}/retry")
def export_retry(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _job(services.retry_export(_actor(request), _job_visible(request, pk)))


@router.post("/exports/{int:pk}/cancel")
def export_cancel(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _job(services.cancel_export(_actor(request), _job_visible(request, pk)))


@router.post("/grants/{int:pk}/revoke")
def revoke(request: HttpRequest, pk: int, payload: ReasonIn) -> dict[str, Any]:
    grant = get_object_or_404(Grant, pk=pk)
    return _grant(services.revoke_grant(_actor(request), grant, payload.reason))


def _package_visible(request: HttpRequest, pk: int) -> Package:
    package = get_object_or_404(Package.objects.select_related("request"), pk=pk)
    if not services.can_view(_user(request), package.request):
        raise Http404
    return package


@router.post("/packages/{int:pk}/links", response={201: dict[str, Any]})
def link(request: HttpRequest, pk: int) -> Status[dict[str, Any]]:
    package = _package_visible(request, pk)
    dl, token = services.create_download_link(_actor(request), package)
    url = request.build_absolute_uri(reverse("access:download", args=[token]))
    return Status(201, {"url": url, "expires_at": dl.expires_at, "single_use": True})


@router.get("/packages/{int:pk}/verify")
def verify(request: HttpRequest, pk: int) -> dict[str, Any]:
    package = _package_visible(request, pk)
    return services.verify_package(_actor(request), package).to_dict()
