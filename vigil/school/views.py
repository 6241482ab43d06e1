"""Pages for the site inventory. Thin: read with the permission service, write through
``vigil.school.services``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import can, require
from vigil.school import inventory, services
from vigil.school.models import Area, Camera, Department, Inspection, Recorder, Supplier
from vigil.school.streamurl import redact
from vigil.school.validation import ValidationFailed


def _apply_errors(form: forms.Form, exc: ValidationFailed) -> None:
    for err in exc.errors:
        name = err.field if err.field in form.fields else None
        form.add_error(name, err.reason if name else f"{err.field}: {err.reason}")


def _set_choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


def _choices(model: Any, blank: bool = False) -> list[tuple[str, str]]:
    rows = [(o.code, f"{o.code} — {o.name}") for o in model.objects.order_by("code")]
    return ([("", "—")] if blank else []) + rows


# ---------------------------------------------------------------------------- cameras


@login_required
def camera_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.SITE_VIEW)
    qs = Camera.objects.with_inspection().select_related(
        "area", "area__department", "recorder", "supplier"
    )
    f = request.GET
    if f.get("q"):
        q = f["q"].strip()
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(area__name__icontains=q))
    if f.get("area"):
        qs = qs.filter(area__code=f["area"])
    if f.get("department"):
        qs = qs.filter(area__department__code=f["department"])
    if f.get("recorder"):
        qs = qs.filter(recorder__code=f["recorder"])
    if f.get("state"):
        qs = qs.filter(state=f["state"])
    context = {
        "cameras": qs.order_by("code"),
        "areas": Area.objects.order_by("code"),
        "departments": Department.objects.order_by("name"),
        "recorders": Recorder.objects.order_by("code"),
        "states": Camera.State.choices,
        "filters": f,
        "can_manage": can(request.user, Action.SITE_MANAGE),  # type: ignore[arg-type]
    }
    template = (
        "school/_camera_table.html"
        if request.headers.get("HX-Request")
        else "school/camera_list.html"
    )
    return render(request, template, context)


class StateForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), choices=Camera.State.choices)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=300)


class InspectionForm(forms.Form):
    inspected_on = forms.DateField(
        label=gettext_lazy("Inspected on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    result = forms.ChoiceField(label=gettext_lazy("Result"), choices=Inspection.Result.choices)
    inspector = forms.CharField(label=gettext_lazy("Inspector"), required=False)
    certificate = forms.CharField(label=gettext_lazy("Certificate number"), required=False)
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


@login_required
def camera_detail(request: HttpRequest, code: str) -> HttpResponse:
    camera = get_object_or_404(
        Camera.objects.select_related(
            "area", "area__department", "recorder", "supplier", "credential"
        ),
        code=code,
    )
    actor = Actor.from_request(request)
    require(actor, Action.SITE_VIEW, camera)
    context = {
        "camera": camera,
        "main_url": redact(camera.main_url),
        "sub_url": redact(camera.sub_url),
        "has_credential": camera.credential_id is not None,
        "inspections": camera.inspections.all()[:20],
        "state_form": StateForm(initial={"state": camera.state}),
        "inspection_form": InspectionForm(initial={"inspected_on": timezone.localdate()}),
        "can_service": can(request.user, Action.CAMERA_SERVICE, camera),  # type: ignore[arg-type]
        "can_manage": can(request.user, Action.SITE_MANAGE),  # type: ignore[arg-type]
        "extra_panels": camera_panels(request, camera),
    }
    return render(request, "school/camera_detail.html", context)


def camera_panels(request: HttpRequest, camera: Camera) -> list[dict[str, Any]]:
    """Panels other apps add to the camera page (health, live, quality), in app order."""
    from importlib import import_module

    from django.apps import apps

    panels: list[dict[str, Any]] = []
    for config in apps.get_app_configs():
        if not config.name.startswith("vigil.") or config.name == "vigil.school":
            continue
        try:
            module = import_module(f"{config.name}.panels")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.panels":
                raise
            continue
        panels.extend(module.camera_panels(request, camera))
    return panels


@require_POST
@login_required
def camera_state(request: HttpRequest, code: str) -> HttpResponse:
    camera = get_object_or_404(Camera, code=code)
    form = StateForm(request.POST)
    if form.is_valid():
        try:
            services.set_camera_state(
                Actor.from_request(request),
                camera,
                form.cleaned_data["state"],
                form.cleaned_data["note"],
            )
            messages.success(request, _("State changed."))
        except ValidationFailed as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Choose a valid state."))
    return redirect("school:camera_detail", code=camera.code)


@require_POST
@login_required
def camera_inspection(request: HttpRequest, code: str) -> HttpResponse:
    camera = get_object_or_404(Camera, code=code)
    form = InspectionForm(request.POST)
    if form.is_valid():
        try:
            services.record_inspection(Actor.from_request(request), camera, **form.cleaned_data)
            messages.success(request, _("Inspection recorded."))
        except ValidationFailed as exc:
            messages.error(request, str(exc))
    else:
        messages.error(
            request, _("The inspection form has errors: %(e)s") % {"e": form.errors.as_text()}
        )
    return redirect("school:camera_detail", code=camera.code)


class CameraForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=40)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    area = forms.ChoiceField(label=gettext_lazy("Area"))
    recorder = forms.ChoiceField(label=gettext_lazy("Recorder"))
    main_url = forms.CharField(
        label=gettext_lazy("Main stream URL"),
        max_length=500,
        help_text=gettext_lazy(
            "rtsp://host:554/path — a user and password in the URL are moved to the "
            "credential store."
        ),
    )
    sub_url = forms.CharField(label=gettext_lazy("Sub-stream URL"), max_length=500, required=False)
    username = forms.CharField(label=gettext_lazy("Camera username"), required=False)
    password = forms.CharField(
        label=gettext_lazy("Camera password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=gettext_lazy("Leave empty to keep the stored password."),
    )
    manufacturer = forms.CharField(label=gettext_lazy("Manufacturer"), required=False)
    model = forms.CharField(label=gettext_lazy("Model"), required=False)
    codec = forms.ChoiceField(label=gettext_lazy("Codec"), choices=Camera.Codec.choices)
    width = forms.IntegerField(label=gettext_lazy("Width"), initial=1920)
    height = forms.IntegerField(label=gettext_lazy("Height"), initial=1080)
    fps = forms.IntegerField(label=gettext_lazy("Frames per second"), initial=15)
    bitrate_kbps = forms.IntegerField(label=gettext_lazy("Bitrate (kbit/s)"), initial=2048)
    sub_codec = forms.ChoiceField(
        label=gettext_lazy("Sub-stream codec"), choices=Camera.Codec.choices
    )
    sub_width = forms.IntegerField(label=gettext_lazy("Sub-stream width"), initial=640)
    sub_height = forms.IntegerField(label=gettext_lazy("Sub-stream height"), initial=360)
    supplier = forms.ChoiceField(label=gettext_lazy("Supplier"), required=False)
    install_date = forms.DateField(
        label=gettext_lazy("Install date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    state = forms.ChoiceField(label=gettext_lazy("State"), choices=Camera.State.choices)
    position_notes = forms.CharField(label=gettext_lazy("Position"), required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "area", _choices(Area))
        _set_choices(self, "recorder", _choices(Recorder))
        _set_choices(self, "supplier", _choices(Supplier, blank=True))
        if editing:
            self.fields["code"].disabled = True


@login_required
def camera_edit(request: HttpRequest, code: str | None = None) -> HttpResponse:
    actor = Actor.from_request(request)
    camera = get_object_or_404(Camera, code=code) if code else None
    require(actor, Action.SITE_MANAGE, camera)
    initial: dict[str, Any] = {}
    if camera is not None:
        initial = {name: getattr(camera, name) for name in services.CAMERA_FIELDS}
        initial.update(
            code=camera.code,
            area=camera.area.code,
            recorder=camera.recorder.code,
            supplier=camera.supplier.code if camera.supplier else "",
            username=camera.credential.username if camera.credential else "",
        )
    form = CameraForm(request.POST or None, initial=initial, editing=camera is not None)
    if request.method == "POST" and form.is_valid():
        raw = dict(form.cleaned_data)
        raw["install_date"] = raw["install_date"].isoformat() if raw["install_date"] else ""
        try:
            if camera is None:
                camera = services.add_camera(actor, raw)
                messages.success(request, _("Camera %(code)s added.") % {"code": camera.code})
            else:
                services.update_camera(actor, camera, raw)
                messages.success(request, _("Camera saved."))
            return redirect("school:camera_detail", code=camera.code)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    return render(request, "school/camera_form.html", {"form": form, "camera": camera})


# ------------------------------------------------------------- areas, departments, recorders


@login_required
def area_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.SITE_VIEW)
    areas = Area.objects.select_related("department").annotate(n=Count("cameras")).order_by("code")
    return render(
        request,
        "school/area_list.html",
        {"areas": areas, "can_manage": can(request.user, Action.SITE_MANAGE)},  # type: ignore[arg-type]
    )


class AreaForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=40)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Area.Kind.choices)
    building = forms.CharField(label=gettext_lazy("Building / floor"), required=False)
    department = forms.ChoiceField(
        label=gettext_lazy("Responsible department"),
        required=False,
        help_text=gettext_lazy("Empty: the security office (Art. 6)."),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "department", _choices(Department, blank=True))
        if editing:
            self.fields["code"].disabled = True


@login_required
def area_edit(request: HttpRequest, code: str | None = None) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.SITE_MANAGE)
    area = get_object_or_404(Area, code=code) if code else None
    initial = {}
    if area is not None:
        initial = {
            "code": area.code,
            "name": area.name,
            "kind": area.kind,
            "building": area.building,
            "department": area.department.code,
        }
    form = AreaForm(request.POST or None, initial=initial, editing=area is not None)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_area(actor, form.cleaned_data, existing=area)
            messages.success(request, _("Area saved."))
            return redirect("school:area_list")
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    return render(
        request,
        "school/simple_form.html",
        {"form": form, "title": area or _("New area"), "back": "school:area_list"},
    )


@login_required
def department_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.SITE_VIEW)
    departments = Department.objects.annotate(
        n_areas=Count("areas", distinct=True), n_cameras=Count("areas__cameras", distinct=True)
    ).order_by("name")
    return render(
        request,
        "school/department_list.html",
        {"departments": departments, "can_manage": can(request.user, Action.SITE_MANAGE)},  # type: ignore[arg-type]
    )


class DepartmentForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=40)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Department.Kind.choices)
    is_security_office = forms.BooleanField(label=gettext_lazy("Security office"), required=False)
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True


@login_required
def department_edit(request: HttpRequest, code: str | None = None) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.SITE_MANAGE)
    dept = get_object_or_404(Department, code=code) if code else None
    initial = {}
    if dept is not None:
        initial = {
            k: getattr(dept, k) for k in ("code", "name", "kind", "is_security_office", "notes")
        }
    form = DepartmentForm(request.POST or None, initial=initial, editing=dept is not None)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_department(actor, form.cleaned_data, existing=dept)
            messages.success(request, _("Department saved."))
            return redirect("school:department_list")
        except ValidationFailed as exc:
            _apply_errors(form, exc)
    return render(
        request,
        "school/simple_form.html",
        {"form": form, "title": dept or _("New department"), "back": "school:department_list"},
    )


@login_required
def recorder_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.SITE_VIEW)
    recorders = (
        Recorder.objects.annotate(n=Count("cameras")).prefetch_related("volumes").order_by("code")
    )
    return render(
        request,
        "school/recorder_list.html",
        {"recorders": recorders, "can_manage": can(request.user, Action.SITE_MANAGE)},  # type: ignore[arg-type]
    )


class RecorderForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=40)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    model = forms.CharField(label=gettext_lazy("Model"), required=False)
    serial_number = forms.CharField(label=gettext_lazy("Serial number"), required=False)
    location = forms.CharField(label=gettext_lazy("Location"), required=False)
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    volume_label = forms.CharField(label=gettext_lazy("Volume label"), required=False)
    volume_path = forms.CharField(label=gettext_lazy("Volume path"), required=False)
    volume_capacity_bytes = forms.IntegerField(
        label=gettext_lazy("Volume capacity (bytes)"), required=False
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True


@login_required
def recorder_edit(request: HttpRequest, code: str | None = None) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.SITE_MANAGE)
    rec = get_object_or_404(Recorder, code=code) if code else None
    initial = {}
    if rec is not None:
        initial = {
            k: getattr(rec, k)
            for k in ("code", "name", "model", "serial_number", "location", "notes")
        }
    form = RecorderForm(request.POST or None, initial=initial, editing=rec is not None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        volumes = []
        if d["volume_label"] or d["volume_path"]:
            volumes.append(
                {
                    "label": d["volume_label"],
                    "path": d["volume_path"],
                    "capacity_bytes": d["volume_capacity_bytes"],
                }
            )
        try:
            services.save_recorder(actor, d, volumes, existing=rec)
            messages.success(request, _("Recorder saved."))
            return redirect("school:recorder_list")
        except ValidationFailed as exc:
            for err in exc.errors:
                field = err.field.replace("volumes[0].", "volume_")
                form.add_error(field if field in form.fields else None, err.reason)
    return render(
        request,
        "school/simple_form.html",
        {
            "form": form,
            "title": rec or _("New recorder"),
            "back": "school:recorder_list",
            "volumes": rec.volumes.all() if rec else [],
        },
    )


# -------------------------------------------------------------------------- inventory


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Inventory file (.csv, .yaml)"))


@login_required
def inventory_view(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.SITE_MANAGE)
    form = ImportForm(request.POST or None, request.FILES or None)
    errors: list[inventory.RowError] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        name = Path(upload.name).name
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            with path.open("wb") as fh:
                for chunk in upload.chunks():
                    fh.write(chunk)
            try:
                result = inventory.import_inventory(actor, path)
                messages.success(request, _("Imported: %(s)s") % {"s": result.summary()})
                return redirect("school:camera_list")
            except inventory.ImportFailed as exc:
                errors = exc.errors
    return render(request, "school/inventory.html", {"form": form, "errors": errors})


@login_required
def inventory_export(request: HttpRequest, fmt: str) -> HttpResponse:
    actor = Actor.from_request(request)
    if fmt == "csv":
        body, ctype = inventory.export_csv(actor), "text/csv; charset=utf-8"
    else:
        body, ctype = inventory.export_yaml(actor), "application/yaml; charset=utf-8"
    response = HttpResponse(body, content_type=ctype)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="vigil-inventory-{stamp}.{fmt}"'
    return response
