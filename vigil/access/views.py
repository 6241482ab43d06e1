"""Pages of footage requests: list, filing, the request (decision, grants, extraction,
packages, custody), downloads, the package media URL, verification, delegations. Thin:
they read through the permission service and change through ``services``."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from vigil.access import deadlines, services
from vigil.access import package as pkg
from vigil.access.models import (
    KIND_BASIS,
    ExportJob,
    FootageRequest,
    Package,
    RequestForm,
    RequestKind,
    RequestStatus,
)
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.authz.models import Delegation, Grant
from vigil.authz.rules import Action
from vigil.authz.services import can, require
from vigil.school.models import Camera, Department
from vigil.school.validation import ValidationFailed

DT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def _dt_field(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"},
                                   format="%Y-%m-%dT%H:%M:%S"),
        input_formats=DT_FORMATS,
    )  # fmt: skip


def _apply_errors(form: forms.Form, exc: ValidationFailed) -> None:
    for err in exc.errors:
        name = err.field if err.field in form.fields else None
        form.add_error(name, err.reason if name else f"{err.field}: {err.reason}")


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _visible_or_404(request: HttpRequest, pk: int) -> FootageRequest:
    req = get_object_or_404(FootageRequest, pk=pk)
    if not services.can_view(_user(request), req):
        raise Http404
    return req


# ------------------------------------------------------------------------------ list


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    state = request.GET.get("state", "open")
    kind = request.GET.get("kind", "")
    qs = services.list_requests(Actor.from_request(request), state=state, kind=kind)
    now = timezone.now()
    rows = [{"req": r, **_deadline_states(r, now)} for r in qs[:300]]
    return render(
        request,
        "access/list.html",
        {
            "rows": rows,
            "state": state,
            "kind": kind,
            "states": [("open", _("Open")), ("all", _("All")), *RequestStatus.choices],
            "kinds": RequestKind.choices,
            "all_visible": can(user, Action.REQUEST_VIEW_ALL),
            "may_decide": can(user, Action.REQUEST_DECIDE),
            "may_file": can(user, Action.REQUEST_FILE),
        },
    )


def _deadline_states(req: FootageRequest, now: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"reply": None, "access": None}
    void = req.status in (RequestStatus.REFUSED, RequestStatus.WITHDRAWN)
    if req.reply_due is not None:
        out["reply"] = deadlines.state_of(req.reply_due, req.replied_at, now, void=False)
    if req.access_due is not None:
        out["access"] = deadlines.state_of(req.access_due, req.provided_at, now, void=void)
    return out


# ----------------------------------------------------------------------------- filing


class RequestFormForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind of request"))
    form = forms.ChoiceField(
        label=gettext_lazy("Form"), choices=RequestForm.choices, widget=forms.RadioSelect
    )
    cameras = forms.MultipleChoiceField(
        label=gettext_lazy("Cameras"), widget=forms.SelectMultiple(attrs={"size": 8})
    )
    start = _dt_field(gettext_lazy("Footage from"))
    end = _dt_field(gettext_lazy("Footage until"))
    subject = forms.CharField(
        label=gettext_lazy("Subject"),
        required=False,
        max_length=300,
        help_text=gettext_lazy(
            "For a parent: the child's name and class. Otherwise the incident or complaint."
        ),
    )
    purpose = forms.CharField(
        label=gettext_lazy("Purpose"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )
    department = forms.ChoiceField(label=gettext_lazy("Department"), required=False)
    recipient = forms.CharField(
        label=gettext_lazy("Recipient of a copy"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("Burnt into a watermark on copies. Empty: the requester."),
    )
    requester = forms.ChoiceField(
        label=gettext_lazy("On behalf of"),
        required=False,
        help_text=gettext_lazy("A paper request received at the school: whose request it is."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = dict(RequestKind.choices)
        on_behalf = can(user, Action.REQUEST_VIEW_ALL)
        allowed = list(dict.fromkeys(k for r in Role for k in services.kinds_for_role(r)))
        if not on_behalf:
            allowed = list(services.kinds_for(user))
        self._set("kind", [(k, f"{kinds[k]} ({KIND_BASIS[RequestKind(k)]})") for k in allowed])
        self._set(
            "cameras",
            [
                (c.code, f"{c.code} — {c.name}")
                for c in Camera.objects.select_related("area").order_by("code")
            ],
        )
        if RequestKind.INTERNAL_REVIEW in allowed:
            self._set(
                "department",
                [("", "—"), *[(d.code, d.name) for d in Department.objects.order_by("code")]],
            )
        else:  # outsiders review nothing for a department
            del self.fields["department"]
        if on_behalf:
            people = User.objects.filter(is_active=True).exclude(pk=user.pk).order_by("username")
            self._set(
                "requester",
                [("", _("myself"))]
                + [(u.username, f"{u.display_name} ({u.get_role_display()})") for u in people],
            )
        else:
            del self.fields["requester"]

    def _set(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


@login_required
def request_new(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.REQUEST_FILE)
    user = _user(request)
    now = timezone.localtime().replace(microsecond=0)
    form = RequestFormForm(
        request.POST or None,
        user=user,
        initial={
            "start": now - timedelta(hours=1),
            "end": now - timedelta(minutes=30),
            "form": RequestForm.VIEW,
            "department": user.department.code if user.department else "",
        },
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        requester = None
        if d.get("requester"):
            requester = User.objects.filter(username=d["requester"]).first()
        try:
            req = services.file_request(
                actor,
                kind=d["kind"],
                form=d["form"],
                purpose=d["purpose"],
                cameras=Camera.objects.filter(code__in=d["cameras"]),
                start=d["start"],
                end=d["end"],
                subject=d["subject"],
                department=Department.objects.filter(code=d["department"]).first()
                if d.get("department")
                else None,
                recipient=d["recipient"],
                requester=requester,
            )
            messages.success(request, _("Request %(number)s filed.") % {"number": req.number})
            return redirect("access:detail", pk=req.pk)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    return render(
        request,
        "access/new.html",
        {"form": form, "two_person": settings.VIGIL.access},
    )


# ---------------------------------------------------------------------------- detail


class ApproveForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000)
    grant_days = forms.IntegerField(
        label=gettext_lazy("Access valid for (days)"), required=False, min_value=1
    )
    extractor = forms.ChoiceField(label=gettext_lazy("IT staff who extracts"), required=False)
    redact = forms.BooleanField(label=gettext_lazy("Blur other people's faces"), required=False)
    redact_persons = forms.BooleanField(
        label=gettext_lazy(
            "Also find people by their shape and blur their heads (backs turned, faces too small)"
        ),
        required=False,
    )
    watermark = forms.BooleanField(
        label=gettext_lazy("Burn in a watermark (request number, recipient)"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["extractor"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(u.username, u.display_name) for u in services.extractors()]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=2000)


class ExportForm(forms.Form):
    keep = forms.CharField(
        label=gettext_lazy("Faces to leave visible"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "12.5, 0.42, 0.31"}),
        help_text=gettext_lazy(
            "One per line: seconds from the start of the clip, then x and y from 0 to 1 "
            "(the parent's own child)."
        ),
    )

    def clean_keep(self) -> list[list[float]]:
        out = []
        for line in self.cleaned_data["keep"].splitlines():
            if not line.strip():
                continue
            parts = [p for p in re.split(r"[,;\s]+", line.strip()) if p]
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise forms.ValidationError(_("Write three numbers per line.")) from None
            if len(values) != 3:
                raise forms.ValidationError(_("Write three numbers per line."))
            out.append(values)
        return out


def _grant_rows(req: FootageRequest, now: Any) -> list[dict[str, Any]]:
    rows = []
    for g in services.request_grants(req).prefetch_related("cameras"):
        if g.revoked_at is not None:
            state = "revoked"
        elif g.valid_until <= now:
            state = "expired"
        elif g.valid_from > now:
            state = "pending"
        else:
            state = "active"
        rows.append({"grant": g, "state": state})
    return rows


def _playback_url() -> str | None:
    try:
        return reverse("live:playback")
    except NoReverseMatch:
        return None


def _detail_context(request: HttpRequest, req: FootageRequest) -> dict[str, Any]:
    user = _user(request)
    now = timezone.now()
    is_requester = user.pk in (req.requester_id, req.filed_by_id)
    first_approval = not req.decisions.exists()
    sees_grants = can(user, Action.REQUEST_VIEW_ALL) or is_requester or user.pk == req.extractor_id
    approve_form = ApproveForm(
        initial={
            "grant_days": settings.VIGIL.access.grant_validity_days,
            "redact": req.redact,
            "watermark": services.is_outside(req.requester),
        }
    )
    packages = []
    for p in req.packages.select_related("job"):
        packages.append(
            {
                "package": p,
                "may_download": services.may_download(user, p),
                "custody": list(p.custody.order_by("seq")),
                "files": pkg.package_files(services.package_dir(p))
                if services.package_dir(p).exists()
                else [],
            }
        )
    return {
        "req": req,
        "basis": KIND_BASIS.get(RequestKind(req.kind), ""),
        "decisions": list(req.decisions.select_related("decided_by", "on_behalf_of")),
        "may_decide": services.may_decide(user, req),
        "first_approval": first_approval,
        "approve_form": approve_form,
        "reason_form": ReasonForm(),
        "grants": _grant_rows(req, now) if sees_grants else [],
        "may_revoke": can(user, Action.GRANT_REVOKE),
        "may_withdraw": services.may_withdraw(user, req),
        "may_export": services.may_export(user, req),
        "export_form": ExportForm(),
        "jobs": list(req.exports.select_related("created_by")),
        "packages": packages,
        "may_verify": services.may_verify(user),
        "is_requester": is_requester,
        "playback_url": _playback_url() if req.form == RequestForm.VIEW else None,
        **_deadline_states(req, now),
    }


@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_or_404(request, pk)
    return render(request, "access/detail.html", _detail_context(request, req))


def _back(req: FootageRequest) -> HttpResponse:
    return redirect("access:detail", pk=req.pk)


def _fail(request: HttpRequest, exc: ValidationFailed) -> None:
    messages.error(request, "; ".join(e.reason for e in exc.errors))


@require_POST
@login_required
def request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_or_404(request, pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
        return _back(req)
    d = form.cleaned_data
    first = not req.decisions.exists()
    try:
        req = services.approve(
            Actor.from_request(request),
            req,
            reason=d["note"],
            grant_days=d["grant_days"] if first else None,
            extractor=(d.get("extractor") or None) if first else None,
            redact=d["redact"] if first and req.form == RequestForm.COPY else None,
            redact_persons=d["redact_persons"] if first else None,
            watermark=d["watermark"] if first else None,
        )
        if req.status == RequestStatus.APPROVED:
            messages.success(request, _("Request %(n)s approved.") % {"n": req.number})
        else:
            messages.success(
                request,
                _("Your approval is recorded; a second board member must approve too."),
            )
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(req)


@require_POST
@login_required
def request_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_or_404(request, pk)
    try:
        services.refuse(Actor.from_request(request), req, request.POST.get("reason", ""))
        messages.success(request, _("Request %(n)s refused.") % {"n": req.number})
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(req)


@require_POST
@login_required
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_or_404(request, pk)
    try:
        services.withdraw(Actor.from_request(request), req)
        messages.success(request, _("Request %(n)s withdrawn.") % {"n": req.number})
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(req)


@require_POST
@login_required
def grant_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(Grant, pk=pk)
    actor = Actor.from_request(request)
    try:
        services.revoke_grant(actor, grant, request.POST.get("reason", ""))
        messages.success(request, _("Grant #%(id)s revoked.") % {"id": grant.pk})
    except ValidationFailed as exc:
        _fail(request, exc)
    source = grant.source.split(":", 1)
    if source[0] == "request" and source[1].isdigit():
        return redirect("access:detail", pk=int(source[1]))
    return redirect("access:list")


# ------------------------------------------------------------------------ extraction


@require_POST
@login_required
def export_start(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_or_404(request, pk)
    form = ExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
        return _back(req)
    try:
        job = services.create_export(
            Actor.from_request(request), req, keep=form.cleaned_data["keep"]
        )
        messages.success(request, _("Extraction #%(id)s queued.") % {"id": job.pk})
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(req)


def _job_or_404(request: HttpRequest, pk: int) -> ExportJob:
    job = get_object_or_404(ExportJob.objects.select_related("request"), pk=pk)
    if not services.can_view(_user(request), job.request):
        raise Http404
    return job


@login_required
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's row, for htmx polling while it runs."""
    job = _job_or_404(request, pk)
    return render(request, "access/_job.html", {"job": job})


@require_POST
@login_required
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    try:
        services.retry_export(Actor.from_request(request), job)
        messages.success(request, _("Extraction #%(id)s queued again.") % {"id": job.pk})
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(job.request)


@require_POST
@login_required
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    try:
        services.cancel_export(Actor.from_request(request), job)
        messages.success(request, _("Extraction #%(id)s cancelled.") % {"id": job.pk})
    except ValidationFailed as exc:
        _fail(request, exc)
    return _back(job.request)


# -------------------------------------------------------------------------- packages


def _package_or_404(request: HttpRequest, pk: int) -> Package:
    package = get_object_or_404(Package.objects.select_related("request"), pk=pk)
    if not services.can_view(_user(request), package.request):
        raise Http404
    return package


@require_POST
@login_required
def package_link(request: HttpRequest, pk: int) -> HttpResponse:
    package = _package_or_404(request, pk)
    link, token = services.create_download_link(Actor.from_request(request), package)
    url = request.build_absolute_uri(reverse("access:download", args=[token]))
    return render(
        request,
        "access/link.html",
        {"package": package, "link": link, "url": url, "req": package.request},
    )


@login_required
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    dl = services.open_download(Actor.from_request(request), token)
    response = StreamingHttpResponse(dl.chunks(), content_type="application/zip")
    response["Content-Length"] = str(dl.size)
    response["Content-Disposition"] = f'attachment; filename="{dl.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _file_part(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


@login_required
def package_media(request: HttpRequest, pk: int, name: str) -> HttpResponseBase:
    """A clip of a package, inline (with HTTP ranges) for those who may play it back
    (``services.open_package_media`` decides and audits)."""
    package = _package_or_404(request, pk)
    media = services.open_package_media(Actor.from_request(request), request.session, package, name)
    if media is None:
        raise Http404
    size = media.size
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    start, end = 0, size - 1
    status = 200
    response: HttpResponseBase
    if match is not None:
        a, b = match.group(1), match.group(2)
        if a:
            start = int(a)
            end = min(int(b), size - 1) if b else size - 1
        elif b:
            start = max(0, size - int(b))
        if start > end or start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status = 206
    response = StreamingHttpResponse(
        _file_part(media.path, start, end - start + 1), content_type="video/mp4", status=status
    )
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


@require_POST
@login_required
def package_verify(request: HttpRequest, pk: int) -> HttpResponse:
    package = _package_or_404(request, pk)
    report = services.verify_package(Actor.from_request(request), package)
    return render(
        request,
        "access/verify.html",
        {"form": VerifyForm(), "report": report, "package": package, "packages": _recent()},
    )


# ------------------------------------------------------------------------ verification


class VerifyForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Package (.zip)"))


def _recent() -> list[Package]:
    return list(Package.objects.select_related("request").order_by("-created_at")[:20])


@login_required
def verify_page(request: HttpRequest) -> HttpResponse:
    """Anyone signed in may check a package they hold (nothing is revealed: they upload
    it); the site's key and records are compared on the way."""
    form = VerifyForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        with tempfile.TemporaryDirectory(dir=settings.PATHS.exports) as tmp:
            path = Path(tmp) / "package.zip"
            with open(path, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            report = services.verify_on_site(path)
            report.path = upload.name
    user = _user(request)
    return render(
        request,
        "access/verify.html",
        {
            "form": form,
            "report": report,
            "packages": _recent() if services.may_verify(user) else [],
        },
    )


# ------------------------------------------------------------------------ delegation


class DelegationForm(forms.Form):
    delegate = forms.ChoiceField(label=gettext_lazy("Delegate"))
    until = _dt_field(gettext_lazy("Until"))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["delegate"]
        assert isinstance(field, forms.ChoiceField)
        staff = User.objects.filter(is_active=True).exclude(
            role__in=(Role.PRINCIPAL, Role.BOARD, Role.GUARDIAN, Role.EXTERNAL_REQUESTER,
                      Role.SUPPLIER_TECHNICIAN)
        )  # fmt: skip
        field.choices = [
            (u.username, f"{u.display_name} ({u.get_role_display()})")
            for u in staff.order_by("username")
        ]


@login_required
def delegations(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.DELEGATE)
    form = DelegationForm(
        request.POST or None,
        initial={"until": timezone.localtime().replace(microsecond=0) + timedelta(days=7)},
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.delegate(
                actor, User.objects.get(username=d["delegate"]), d["until"], d["reason"]
            )
            messages.success(request, _("Delegation recorded."))
            return redirect("access:delegations")
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    now = timezone.now()
    rows = [
        {"d": d, "active": d.is_active(now)}
        for d in Delegation.objects.select_related("delegator", "delegate")[:100]
    ]
    return render(request, "access/delegations.html", {"form": form, "rows": rows})


@require_POST
@login_required
def delegation_end(request: HttpRequest, pk: int) -> HttpResponse:
    d = get_object_or_404(Delegation, pk=pk)
    try:
        services.end_delegation(Actor.from_request(request), d, request.POST.get("reason", ""))
        messages.success(request, _("Delegation ended."))
    except ValidationFailed as exc:
        _fail(request, exc)
    return redirect("access:delegations")
