"""Use cases for the site inventory: each checks permission, changes, and audits in one
transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.school import vault
from vigil.school.models import (
    Area,
    Camera,
    Department,
    Inspection,
    Recorder,
    StorageVolume,
    StreamCredential,
    Supplier,
)
from vigil.school.streamurl import with_credentials
from vigil.school.validation import (
    FieldError,
    Lookups,
    ValidationFailed,
    clean_area,
    clean_camera,
    clean_department,
    clean_recorder,
    clean_volume,
)

CAMERA_FIELDS = (
    "name",
    "main_url",
    "sub_url",
    "manufacturer",
    "model",
    "codec",
    "width",
    "height",
    "fps",
    "bitrate_kbps",
    "sub_codec",
    "sub_width",
    "sub_height",
    "install_date",
    "state",
    "position_notes",
)


def db_lookups() -> Lookups:
    return Lookups(
        area=lambda code: Area.objects.filter(code=code).exists(),
        recorder=lambda code: Recorder.objects.filter(code=code).exists(),
        supplier=lambda code: Supplier.objects.filter(code=code).exists(),
        department=lambda code: Department.objects.filter(code=code).exists(),
    )


def _set_credential(camera: Camera, username: str, password: str) -> bool:
    """Store a login apart from the URL. An empty password keeps the existing one."""
    if not username and not password:
        return False
    cred = camera.credential or StreamCredential()
    changed = cred.username != username or bool(password)
    cred.username = username
    if password:
        cred.password_encrypted = vault.encrypt(password)
    elif cred.pk is None:
        cred.password_encrypted = vault.encrypt("")
    cred.save()
    if camera.credential_id != cred.pk:
        camera.credential = cred
        camera.save(update_fields=["credential"])
    return changed


def apply_camera(cleaned: Mapping[str, Any], *, existing: Camera | None = None) -> Camera:
    """Write cleaned camera values (no permission check, no audit: callers do both)."""
    camera = existing or Camera(code=cleaned["code"])
    for name in CAMERA_FIELDS:
        setattr(camera, name, cleaned[name])
    camera.area = Area.objects.get(code=cleaned["area"])
    camera.recorder = Recorder.objects.get(code=cleaned["recorder"])
    camera.supplier = (
        Supplier.objects.get(code=cleaned["supplier"]) if cleaned.get("supplier") else None
    )
    camera.save()
    _set_credential(camera, cleaned.get("username", ""), cleaned.get("password", ""))
    if cleaned.get("inspection_date"):
        Inspection.objects.get_or_create(
            camera=camera,
            inspected_on=cleaned["inspection_date"],
            result=cleaned["inspection_result"],
            defaults={
                "inspector": cleaned.get("inspector", ""),
                "certificate": cleaned.get("certificate", ""),
            },
        )
    return camera


def camera_summary(camera: Camera) -> dict[str, Any]:
    """What the audit log keeps about a camera: never a credential."""
    return {
        "code": camera.code,
        "name": camera.name,
        "area": camera.area.code,
        "recorder": camera.recorder.code,
        "main_url": camera.main_url,
        "sub_url": camera.sub_url,
        "state": camera.state,
    }


def add_camera(actor: Actor, raw: Mapping[str, Any]) -> Camera:
    require(actor, Action.SITE_MANAGE)
    cleaned, errors = clean_camera(raw, db_lookups())
    code = cleaned.get("code", "")
    if code and Camera.objects.filter(code=code).exists():
        errors.insert(0, FieldError("code", f"a camera with code '{code}' already exists"))
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            camera = apply_camera(cleaned)
            record(actor, "camera.create", camera, detail=camera_summary(camera))
    except IntegrityError as exc:  # a concurrent add of the same code
        raise ValidationFailed(
            [FieldError("code", f"a camera with code '{code}' already exists")]
        ) from exc
    return camera


def update_camera(actor: Actor, camera: Camera, raw: Mapping[str, Any]) -> Camera:
    require(actor, Action.SITE_MANAGE, camera)
    values = dict(raw)
    values["code"] = camera.code
    cleaned, errors = clean_camera(values, db_lookups())
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        before = camera_summary(camera)
        camera = apply_camera(cleaned, existing=camera)
        after = camera_summary(camera)
        changes = {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}
        if cleaned.get("username") or cleaned.get("password"):
            changes["credential"] = ["***", "***"]
        record(actor, "camera.update", camera, detail={"changes": changes})
    return camera


def set_camera_state(actor: Actor, camera: Camera, state: str, note: str = "") -> Camera:
    require(actor, Action.CAMERA_SERVICE, camera)
    if state not in Camera.State.values:
        raise ValidationFailed([FieldError("state", f"'{state}' is not a camera state")])
    with transaction.atomic():
        old = camera.state
        camera.state = state
        camera.save(update_fields=["state", "updated_at"])
        record(actor, "camera.state", camera, detail={"from": old, "to": state, "note": note})
    return camera


def record_inspection(
    actor: Actor,
    camera: Camera,
    *,
    inspected_on: date,
    result: str,
    inspector: str = "",
    certificate: str = "",
    notes: str = "",
) -> Inspection:
    require(actor, Action.CAMERA_SERVICE, camera)
    if result not in Inspection.Result.values:
        raise ValidationFailed([FieldError("result", f"'{result}' is not passed or failed")])
    with transaction.atomic():
        inspection = Inspection.objects.create(
            camera=camera,
            inspected_on=inspected_on,
            result=result,
            inspector=inspector,
            certificate=certificate,
            notes=notes,
        )
        record(
            actor,
            "camera.inspection",
            camera,
            detail={"date": inspected_on.isoformat(), "result": result, "inspector": inspector},
        )
    return inspection


def stream_url(camera: Camera, which: str = "main") -> str:
    """The URL with credentials, for the recorder and live relay only."""
    url = camera.main_url if which == "main" else (camera.sub_url or camera.main_url)
    cred = camera.credential
    if cred is None:
        return url
    return with_credentials(url, cred.username, vault.decrypt(bytes(cred.password_encrypted)))


def stream_credentials(camera: Camera) -> tuple[str, str]:
    cred = camera.credential
    if cred is None:
        return "", ""
    return cred.username, vault.decrypt(bytes(cred.password_encrypted))


def save_department(
    actor: Actor, raw: Mapping[str, Any], existing: Department | None = None
) -> Department:
    require(actor, Action.SITE_MANAGE)
    values = dict(raw)
    if existing is not None:
        values["code"] = existing.code
    cleaned, errors = clean_department(values)
    if existing is None and Department.objects.filter(code=cleaned.get("code")).exists():
        errors.append(FieldError("code", f"a department with code '{cleaned['code']}' exists"))
    if cleaned.get("is_security_office"):
        other = Department.objects.filter(is_security_office=True)
        if existing is not None:
            other = other.exclude(pk=existing.pk)
        if other.exists():
            errors.append(
                FieldError("is_security_office", "another department is the security office")
            )
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        dept = existing or Department(code=cleaned["code"])
        for name in ("name", "kind", "is_security_office", "notes"):
            setattr(dept, name, cleaned[name])
        dept.save()
        record(actor, "department.save", dept, detail={"created": existing is None})
    return dept


def save_area(actor: Actor, raw: Mapping[str, Any], existing: Area | None = None) -> Area:
    require(actor, Action.SITE_MANAGE)
    values = dict(raw)
    if existing is not None:
        values["code"] = existing.code
    if not str(values.get("department") or "").strip():
        office = Department.objects.filter(is_security_office=True).first()
        if office is not None:  # Art. 6: the security office answers by default
            values["department"] = office.code
    cleaned, errors = clean_area(values, db_lookups())
    if existing is None and Area.objects.filter(code=cleaned.get("code")).exists():
        errors.append(FieldError("code", f"an area with code '{cleaned['code']}' exists"))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        area = existing or Area(code=cleaned["code"])
        area.name = cleaned["name"]
        area.kind = cleaned["kind"]
        area.building = cleaned["building"]
        old_dept = area.department.code if area.department_id else None
        area.department = Department.objects.get(code=cleaned["department"])
        area.save()
        record(
            actor,
            "area.save",
            area,
            detail={"created": existing is None, "department": [old_dept, area.department.code]},
        )
    return area


def save_recorder(
    actor: Actor,
    raw: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]] | None = None,
    existing: Recorder | None = None,
) -> Recorder:
    require(actor, Action.SITE_MANAGE)
    values = dict(raw)
    if existing is not None:
        values["code"] = existing.code
    cleaned, errors = clean_recorder(values)
    if existing is None and Recorder.objects.filter(code=cleaned.get("code")).exists():
        errors.append(FieldError("code", f"a recorder with code '{cleaned['code']}' exists"))
    cleaned_volumes = []
    for i, vol in enumerate(volumes or []):
        v, verr = clean_volume(vol)
        errors.extend(FieldError(f"volumes[{i}].{e.field}", e.reason) for e in verr)
        cleaned_volumes.append(v)
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        rec = existing or Recorder(code=cleaned["code"])
        for name in ("name", "model", "serial_number", "location", "notes"):
            setattr(rec, name, cleaned[name])
        rec.save()
        for v in cleaned_volumes:
            StorageVolume.objects.update_or_create(
                recorder=rec,
                label=v["label"],
                defaults={"path": v["path"], "capacity_bytes": v["capacity_bytes"]},
            )
        record(
            actor,
            "recorder.save",
            rec,
            detail={"created": existing is None, "volumes": [v["label"] for v in cleaned_volumes]},
        )
    return rec
