"""Pages: the storage plan, the retention policy, evidence holds, coverage and signed
reports. Thin: they read with the permission service and change through ``services``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import can, require
from vigil.retention import capacity, coverage, planner, policy, reports, services
from vigil.retention.models import CameraPolicy, CoverageReport, Hold, VolumeState
from vigil.school.models import Camera
from vigil.school.validation import ValidationFailed


def _apply_errors(form: forms.Form, exc: ValidationFailed) -> None:
    for err in exc.errors:
        name = err.field if err.field in form.fields else None
        form.add_error(name, err.reason if name else f"{err.field}: {err.reason}")


# ---------------------------------------------------------------------- storage plan


class PlanForm(forms.Form):
    add = forms.CharField(
        label=gettext_lazy("Extra cameras (what if)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "NVR-03:4096"}),
        help_text=gettext_lazy("One per line: RECORDER:KBIT/S"),
    )
    remove = forms.CharField(
        label=gettext_lazy("Without these cameras"),
        required=False,
        help_text=gettext_lazy("Camera codes, separated by spaces or commas"),
    )
    declared = forms.BooleanField(
        label=gettext_lazy("Use the declared volume sizes"), required=False
    )


@login_required
def storage_plan(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.STORAGE_VIEW)
    form = PlanForm(request.GET or None)
    what_if = capacity.WhatIf()
    declared = False
    if form.is_valid():
        adds = [ln.strip() for ln in form.cleaned_data["add"].splitlines() if ln.strip()]
        removes = form.cleaned_data["remove"].replace(",", " ").split()
        declared = form.cleaned_data["declared"]
        try:
            what_if = capacity.WhatIf.parse(adds, removes)
        except ValueError as exc:
            form.add_error("add", str(exc))
    plan = None
    try:
        plan = capacity.build_plan(what_if, declared_only=declared)
    except ValueError as exc:
        form.add_error(None, str(exc))
        plan = capacity.build_plan(capacity.WhatIf(), declared_only=declared)
    states = {
        s.volume_id: s for s in VolumeState.objects.select_related("volume", "volume__recorder")
    }
    return render(
        request,
        "retention/storage_plan.html",
        {
            "plan": plan,
            "form": form,
            "states": states.values(),
            "infinite": planner.INFINITE_DAYS,
            "at_risk": [c for c in plan.cameras if not c.holds_floor],
            "can_policy": can(request.user, Action.SETTINGS_MANAGE),  # type: ignore[arg-type]
        },
    )


# ------------------------------------------------------------------------- policy


class PolicyForm(forms.Form):
    floor_days = forms.IntegerField(
        label=gettext_lazy("Retention floor (days)"), required=False, min_value=1, max_value=3650
    )
    ceiling_days = forms.IntegerField(
        label=gettext_lazy("Retention ceiling (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=gettext_lazy("Empty: no ceiling (footage is deleted only for space)."),
    )


@login_required
def policy_edit(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.SETTINGS_MANAGE)
    site = policy.site_policy()
    form = PolicyForm(
        request.POST or None,
        initial={"floor_days": site.floor_days, "ceiling_days": site.ceiling_days},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.set_site_policy(
                actor,
                floor_days=form.cleaned_data["floor_days"],
                ceiling_days=form.cleaned_data["ceiling_days"],
            )
            messages.success(request, _("Retention policy saved."))
            return redirect("retention:policy")
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    overrides = CameraPolicy.objects.select_related("camera").order_by("camera__code")
    return render(
        request,
        "retention/policy.html",
        {
            "form": form,
            "effective": policy.site_effective(),
            "regulation_floor": policy.regulation_floor(),
            "overrides": [(o, policy.effective(o.camera_id)) for o in overrides],
        },
    )


@require_POST
@login_required
def camera_policy(request: HttpRequest, code: str) -> HttpResponse:
    camera = get_object_or_404(Camera, code=code)
    form = PolicyForm(request.POST)
    if form.is_valid():
        try:
            services.set_camera_policy(
                Actor.from_request(request),
                camera,
                floor_days=form.cleaned_data["floor_days"],
                ceiling_days=form.cleaned_data["ceiling_days"],
            )
            messages.success(request, _("Camera retention policy saved."))
        except ValidationFailed as exc:
            messages.error(request, "; ".join(e.reason for e in exc.errors))
    else:
        messages.error(
            request, _("The retention policy form has errors: %(e)s") % {"e": form.errors.as_text()}
        )
    return redirect("school:camera_detail", code=camera.code)


# -------------------------------------------------------------------------- holds


class HoldForm(forms.Form):
    cameras = forms.MultipleChoiceField(
        label=gettext_lazy("Cameras"), widget=forms.SelectMultiple(attrs={"size": 8})
    )
    start = forms.DateTimeField(
        label=gettext_lazy("Footage from"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    end = forms.DateTimeField(
        label=gettext_lazy("Footage until"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    source = forms.CharField(
        label=gettext_lazy("Source"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("e.g. a request number, a minutes (biên bản) number"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["cameras"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(c.code, f"{c.code} — {c.name}") for c in Camera.objects.order_by("code")]


class ReleaseForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason for release"), max_length=2000)


def _require_hold_access(request: HttpRequest) -> tuple[Actor, bool, bool]:
    actor = Actor.from_request(request)
    may_place = can(request.user, Action.HOLD_PLACE)  # type: ignore[arg-type]
    may_release = can(request.user, Action.HOLD_RELEASE)  # type: ignore[arg-type]
    if not (may_place or may_release):
        require(actor, Action.HOLD_PLACE)  # refused, and the refusal is audited
    return actor, may_place, may_release


@login_required
def hold_list(request: HttpRequest) -> HttpResponse:
    actor, may_place, may_release = _require_hold_access(request)
    now = timezone.localtime()
    form = HoldForm(
        request.POST or None,
        initial={"start": now - timedelta(hours=1), "end": now},
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        cameras = list(Camera.objects.filter(code__in=d["cameras"]))
        try:
            hold = services.place_hold(
                actor, cameras, d["start"], d["end"], d["reason"], source=d["source"]
            )
            messages.success(request, _("Hold #%(id)s placed.") % {"id": hold.pk})
            return redirect("retention:hold_list")
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    holds = Hold.objects.prefetch_related("cameras").order_by("-placed_at")
    return render(
        request,
        "retention/holds.html",
        {
            "form": form,
            "active": [h for h in holds if h.is_active],
            "released": [h for h in holds if not h.is_active][:50],
            "may_place": may_place,
            "may_release": may_release,
            "release_form": ReleaseForm(),
        },
    )


@require_POST
@login_required
def hold_release(request: HttpRequest, pk: int) -> HttpResponse:
    hold = get_object_or_404(Hold, pk=pk)
    form = ReleaseForm(request.POST)
    actor = Actor.from_request(request)
    if not form.is_valid():
        require(actor, Action.HOLD_RELEASE)
        messages.error(request, _("Say why the hold is released."))
        return redirect("retention:hold_list")
    try:
        services.release_hold(actor, hold, form.cleaned_data["reason"])
        messages.success(request, _("Hold #%(id)s released.") % {"id": hold.pk})
    except ValidationFailed as exc:
        messages.error(request, "; ".join(e.reason for e in exc.errors))
    return redirect("retention:hold_list")


# ----------------------------------------------------------------------- coverage


class RangeForm(forms.Form):
    first = forms.DateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    last = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))


def _range(request: HttpRequest) -> tuple[RangeForm, date, date]:
    from vigil.school.models import School

    today = coverage.local_day(timezone.now())
    school = School.objects.first()
    installed = coverage.local_day(school.created_at) if school else today
    first, last = max(today - timedelta(days=6), min(installed, today)), today
    form = RangeForm(request.GET or None, initial={"first": first, "last": last})
    if form.is_valid():
        first, last = form.cleaned_data["first"], form.cleaned_data["last"]
        if last < first:
            first, last = last, first
        first = max(first, last - timedelta(days=366))
    return form, first, last


@login_required
def coverage_view(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.RETENTION_REPORT)
    form, first, last = _range(request)
    coverage.ensure_days(first, last)
    day_param = request.GET.get("day")
    detail: list[dict[str, Any]] = []
    shown_day = None
    if day_param:
        try:
            shown_day = date.fromisoformat(day_param)
        except ValueError:
            raise Http404 from None
        detail = reports.report_data(shown_day, shown_day).rows
    query = f"first={first.isoformat()}&last={last.isoformat()}"
    return render(
        request,
        "retention/coverage.html",
        {
            "form": form,
            "first": first,
            "last": last,
            "days": reports.report_summaries(first, last),
            "detail": detail,
            "shown_day": shown_day,
            "query": query,
        },
    )


@login_required
def coverage_export(request: HttpRequest, fmt: str) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.RETENTION_REPORT)
    if fmt not in ("csv", "pdf", "json"):
        raise Http404
    _form, first, last = _range(request)
    data = reports.report_data(first, last)
    record(
        actor,
        "retention.report.export",
        None,
        detail={"from": first.isoformat(), "to": last.isoformat(), "format": fmt},
    )
    name = f"vigil-coverage-{first.isoformat()}_{last.isoformat()}.{fmt}"
    if fmt == "pdf":
        response = HttpResponse(reports.render_pdf(data), content_type="application/pdf")
    elif fmt == "csv":
        response = HttpResponse(reports.render_csv(data), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(reports.render_json(data), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def report_detail(request: HttpRequest, day: str) -> HttpResponse:
    require(Actor.from_request(request), Action.RETENTION_REPORT)
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise Http404 from None
    report = get_object_or_404(CoverageReport, day=when)
    if request.GET.get("download") == "json":
        response = HttpResponse(reports.envelope_json(report), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="vigil-report-{day}.json"'
        return response
    return render(
        request,
        "retention/report_detail.html",
        {"report": report, "verification": reports.verify_stored(report)},
    )


class VerifyForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Exported report (.json, .csv, .pdf)"))


@login_required
def report_verify(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.RETENTION_REPORT)
    form = VerifyForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > 50 * 1024 * 1024:
            form.add_error("file", _("The file is too large."))
        else:
            result = reports.verify_file(upload.read(), upload.name)
    stored = [(r, reports.verify_stored(r)) for r in CoverageReport.objects.order_by("-day")[:31]]
    return render(
        request, "retention/verify.html", {"form": form, "result": result, "stored": stored}
    )
