"""Inventory import and export, CSV and YAML.

* YAML carries the whole site: school, departments, areas, suppliers, recorders with
  their volumes, and cameras.
* CSV carries the camera list, one row per camera, as spreadsheets hold it; the areas,
  recorders and suppliers it names must already exist (or come in a YAML import first).

Import validates everything first and reports every bad row as (file, row, field,
reason); if any row is bad nothing is written. Rows are matched by code: existing ones
are updated, new ones created, nothing is deleted. An unknown column or key is an error.
Exports never contain camera passwords; an import with an empty password keeps the one
already stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.school.models import (
    Area,
    Camera,
    Department,
    Recorder,
    School,
    StorageVolume,
    Supplier,
)
from vigil.school.services import apply_camera
from vigil.school.validation import (
    Lookups,
    clean_area,
    clean_camera,
    clean_department,
    clean_recorder,
    clean_supplier,
    clean_volume,
)

FORMAT_VERSION = 1
CAMERA_COLUMNS = (
    "code",
    "name",
    "area",
    "recorder",
    "main_url",
    "sub_url",
    "username",
    "password",
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
    "supplier",
    "install_date",
    "state",
    "position_notes",
    "inspection_date",
    "inspection_result",
    "inspector",
    "certificate",
)
SCHOOL_KEYS = ("name", "short_name", "address", "phone", "regulation_title")
DEPARTMENT_KEYS = ("code", "name", "kind", "is_security_office", "notes")
AREA_KEYS = ("code", "name", "kind", "building", "department")
SUPPLIER_KEYS = ("code", "name", "contact_person", "phone", "email", "contract_reference")
RECORDER_KEYS = ("code", "name", "model", "serial_number", "location", "notes", "volumes")
VOLUME_KEYS = ("label", "path", "capacity_bytes")
TOP_KEYS = (
    "vigil_inventory",
    "school",
    "departments",
    "areas",
    "suppliers",
    "recorders",
    "cameras",
)


@dataclass(frozen=True)
class RowError:
    file: str
    row: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, field '{self.field}': {self.reason}"


class ImportFailed(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        first = errors[0] if errors else None
        super().__init__(
            f"{len(errors)} problem(s); nothing was imported"
            + (f" (first: {first})" if first else "")
        )


@dataclass
class Inventory:
    school: dict[str, Any] | None = None
    departments: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    areas: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    suppliers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    recorders: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)
    cameras: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated))
        if not kinds:
            return "nothing to import"
        return ", ".join(
            f"{kind}: {self.created.get(kind, 0)} created, {self.updated.get(kind, 0)} updated"
            for kind in kinds
        )


# ---------------------------------------------------------------------------- parsing


def _unknown_keys(
    errors: list[RowError], file: str, row: str, data: Mapping[str, Any], allowed: Iterable[str]
) -> None:
    for key in data:
        if key not in allowed:
            errors.append(RowError(file, row, str(key), "unknown key"))


def _read_csv(path: Path, text: str, errors: list[RowError]) -> Inventory:
    inv = Inventory()
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not header:
        errors.append(RowError(path.name, "1", "-", "the file is empty (no header row)"))
        return inv
    for col in header:
        if col not in CAMERA_COLUMNS:
            errors.append(RowError(path.name, "1", col or "(blank)", "unknown column"))
    if "code" not in header:
        errors.append(RowError(path.name, "1", "code", "required column is missing"))
    for line_no, row in enumerate(reader, start=2):
        if None in row:  # more cells than header columns
            errors.append(RowError(path.name, str(line_no), "-", "more cells than columns"))
            continue
        if not any((v or "").strip() for v in row.values()):
            continue
        inv.cameras.append((str(line_no), {k: v for k, v in row.items() if k in CAMERA_COLUMNS}))
    return inv


def _as_list(value: Any, file: str, name: str, errors: list[RowError]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(RowError(file, name, "-", "must be a list"))
        return []
    return value


def _read_yaml(path: Path, text: str, errors: list[RowError]) -> Inventory:
    inv = Inventory()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = str(mark.line + 1) if mark is not None else "-"
        errors.append(RowError(path.name, where, "-", f"not valid YAML: {exc}"))
        return inv
    if not isinstance(doc, dict):
        errors.append(RowError(path.name, "-", "-", "the document must be a mapping"))
        return inv
    _unknown_keys(errors, path.name, "top level", doc, TOP_KEYS)
    version = doc.get("vigil_inventory", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        errors.append(
            RowError(path.name, "top level", "vigil_inventory", f"unsupported version {version}")
        )
    school = doc.get("school")
    if school is not None:
        if isinstance(school, dict):
            _unknown_keys(errors, path.name, "school", school, SCHOOL_KEYS)
            inv.school = school
        else:
            errors.append(RowError(path.name, "school", "-", "must be a mapping"))

    def section(name: str, keys: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for i, item in enumerate(_as_list(doc.get(name), path.name, name, errors)):
            row = f"{name}[{i}]"
            if not isinstance(item, dict):
                errors.append(RowError(path.name, row, "-", "must be a mapping"))
                continue
            _unknown_keys(errors, path.name, row, item, keys)
            out.append((row, item))
        return out

    inv.departments = section("departments", DEPARTMENT_KEYS)
    inv.areas = section("areas", AREA_KEYS)
    inv.suppliers = section("suppliers", SUPPLIER_KEYS)
    for row, item in section("recorders", RECORDER_KEYS):
        volumes = []
        for j, vol in enumerate(_as_list(item.get("volumes"), path.name, row, errors)):
            vrow = f"{row}.volumes[{j}]"
            if not isinstance(vol, dict):
                errors.append(RowError(path.name, vrow, "-", "must be a mapping"))
                continue
            _unknown_keys(errors, path.name, vrow, vol, VOLUME_KEYS)
            volumes.append(vol)
        inv.recorders.append((row, {k: v for k, v in item.items() if k != "volumes"}, volumes))
    inv.cameras = section("cameras", CAMERA_COLUMNS)
    return inv


def read_file(path: Path) -> tuple[Inventory, list[RowError]]:
    errors: list[RowError] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return Inventory(), [RowError(path.name, "-", "-", "file not found")]
    except UnicodeDecodeError:
        return Inventory(), [RowError(path.name, "-", "-", "not UTF-8 text")]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, text, errors), errors
    if suffix in (".yaml", ".yml"):
        return _read_yaml(path, text, errors), errors
    return Inventory(), [RowError(path.name, "-", "-", "use a .csv, .yaml or .yml file")]


# ------------------------------------------------------------------------- validation


def _validate(inv: Inventory, file: str, errors: list[RowError]) -> dict[str, list[Any]]:
    cleaned: dict[str, list[Any]] = {k: [] for k in ("departments", "areas", "suppliers")}
    cleaned["recorders"] = []
    cleaned["cameras"] = []

    def unique(kind: str, rows: list[tuple[str, dict[str, Any]]]) -> set[str]:
        seen: dict[str, str] = {}
        for row, data in rows:
            code = str(data.get("code") or "").strip()
            if code in seen:
                errors.append(
                    RowError(
                        file, row, "code", f"'{code}' appears again (first at row {seen[code]})"
                    )
                )
            elif code:
                seen[code] = row
        return set(seen)

    dept_codes = unique("department", inv.departments)
    area_codes = unique("area", inv.areas)
    supplier_codes = unique("supplier", inv.suppliers)
    recorder_codes = unique("recorder", [(r, d) for r, d, _ in inv.recorders])
    unique("camera", inv.cameras)

    def exists(model: Any, codes: set[str]) -> Callable[[str], bool]:
        return lambda code: code in codes or model.objects.filter(code=code).exists()

    lookups = Lookups(
        area=exists(Area, area_codes),
        recorder=exists(Recorder, recorder_codes),
        supplier=exists(Supplier, supplier_codes),
        department=exists(Department, dept_codes),
    )
    offices = 0
    for row, data in inv.departments:
        out, errs = clean_department(data)
        errors.extend(RowError(file, row, e.field, e.reason) for e in errs)
        offices += 1 if out.get("is_security_office") else 0
        cleaned["departments"].append(out)
    if offices > 1:
        errors.append(RowError(file, "departments", "is_security_office", "more than one office"))
    for row, data in inv.areas:
        out, errs = clean_area(data, lookups)
        errors.extend(RowError(file, row, e.field, e.reason) for e in errs)
        cleaned["areas"].append(out)
    for row, data in inv.suppliers:
        out, errs = clean_supplier(data)
        errors.extend(RowError(file, row, e.field, e.reason) for e in errs)
        cleaned["suppliers"].append(out)
    paths_seen: dict[str, str] = {}
    for row, data, volumes in inv.recorders:
        out, errs = clean_recorder(data)
        errors.extend(RowError(file, row, e.field, e.reason) for e in errs)
        vols = []
        for j, vol in enumerate(volumes):
            vrow = f"{row}.volumes[{j}]"
            vout, verrs = clean_volume(vol)
            errors.extend(RowError(file, vrow, e.field, e.reason) for e in verrs)
            vpath = vout.get("path", "")
            if vpath in paths_seen:
                errors.append(RowError(file, vrow, "path", f"also used at {paths_seen[vpath]}"))
            elif vpath:
                paths_seen[vpath] = vrow
                clash = StorageVolume.objects.filter(path=vpath).exclude(
                    recorder__code=out.get("code"), label=vout.get("label")
                )
                if clash.exists():
                    errors.append(RowError(file, vrow, "path", "already used by another volume"))
            vols.append(vout)
        cleaned["recorders"].append((out, vols))
    for row, data in inv.cameras:
        out, errs = clean_camera(data, lookups)
        errors.extend(RowError(file, row, e.field, e.reason) for e in errs)
        cleaned["cameras"].append(out)
    return cleaned


def import_inventory(actor: Actor, path: Path) -> ImportResult:
    require(actor, Action.SITE_MANAGE)
    inv, errors = read_file(path)
    cleaned = _validate(inv, path.name, errors) if not errors else {}
    if errors:
        raise ImportFailed(errors)
    result = ImportResult()
    with transaction.atomic():
        if inv.school is not None:
            school = School.objects.first() or School(name=str(inv.school.get("name") or ""))
            for key in SCHOOL_KEYS:
                if key in inv.school:
                    setattr(school, key, str(inv.school[key] or ""))
            school.save()
        for d in cleaned["departments"]:
            _, created = Department.objects.update_or_create(
                code=d["code"],
                defaults={k: d[k] for k in ("name", "kind", "is_security_office", "notes")},
            )
            result.count("departments", created)
        for a in cleaned["areas"]:
            _, created = Area.objects.update_or_create(
                code=a["code"],
                defaults={
                    "name": a["name"],
                    "kind": a["kind"],
                    "building": a["building"],
                    "department": Department.objects.get(code=a["department"]),
                },
            )
            result.count("areas", created)
        for s in cleaned["suppliers"]:
            _, created = Supplier.objects.update_or_create(
                code=s["code"], defaults={k: v for k, v in s.items() if k != "code"}
            )
            result.count("suppliers", created)
        for r, vols in cleaned["recorders"]:
            rec, created = Recorder.objects.update_or_create(
                code=r["code"], defaults={k: v for k, v in r.items() if k != "code"}
            )
            result.count("recorders", created)
            for v in vols:
                StorageVolume.objects.update_or_create(
                    recorder=rec,
                    label=v["label"],
                    defaults={"path": v["path"], "capacity_bytes": v["capacity_bytes"]},
                )
        for c in cleaned["cameras"]:
            existing = Camera.objects.filter(code=c["code"]).first()
            apply_camera(c, existing=existing)
            result.count("cameras", existing is None)
        record(
            actor,
            "inventory.import",
            ("file", "", path.name),
            detail={"created": result.created, "updated": result.updated},
        )
    return result


# ----------------------------------------------------------------------------- export


def _camera_row(camera: Camera) -> dict[str, Any]:
    latest = camera.latest_inspection()
    return {
        "code": camera.code,
        "name": camera.name,
        "area": camera.area.code,
        "recorder": camera.recorder.code,
        "main_url": camera.main_url,
        "sub_url": camera.sub_url,
        "username": camera.credential.username if camera.credential else "",
        "password": "",
        "manufacturer": camera.manufacturer,
        "model": camera.model,
        "codec": camera.codec,
        "width": camera.width,
        "height": camera.height,
        "fps": camera.fps,
        "bitrate_kbps": camera.bitrate_kbps,
        "sub_codec": camera.sub_codec,
        "sub_width": camera.sub_width,
        "sub_height": camera.sub_height,
        "supplier": camera.supplier.code if camera.supplier else "",
        "install_date": camera.install_date.isoformat() if camera.install_date else "",
        "state": camera.state,
        "position_notes": camera.position_notes,
        "inspection_date": latest.inspected_on.isoformat() if latest else "",
        "inspection_result": latest.result if latest else "",
        "inspector": latest.inspector if latest else "",
        "certificate": latest.certificate if latest else "",
    }


def _cameras() -> Iterable[Camera]:
    return Camera.objects.select_related(
        "area", "recorder", "supplier", "credential"
    ).prefetch_related("inspections")


def export_csv(actor: Actor) -> str:
    require(actor, Action.SITE_VIEW)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CAMERA_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for camera in _cameras():
        writer.writerow(_camera_row(camera))
        count += 1
    with transaction.atomic():
        record(actor, "inventory.export", None, detail={"format": "csv", "cameras": count})
    return buf.getvalue()


def export_yaml(actor: Actor) -> str:
    require(actor, Action.SITE_VIEW)
    school = School.objects.first()
    doc: dict[str, Any] = {"vigil_inventory": FORMAT_VERSION}
    if school is not None:
        doc["school"] = {k: getattr(school, k) for k in SCHOOL_KEYS}
    doc["departments"] = [
        {k: getattr(d, k) for k in DEPARTMENT_KEYS} for d in Department.objects.order_by("code")
    ]
    doc["areas"] = [
        {
            "code": a.code,
            "name": a.name,
            "kind": a.kind,
            "building": a.building,
            "department": a.department.code,
        }
        for a in Area.objects.select_related("department").order_by("code")
    ]
    doc["suppliers"] = [
        {k: getattr(s, k) for k in SUPPLIER_KEYS} for s in Supplier.objects.order_by("code")
    ]
    doc["recorders"] = [
        {
            **{k: getattr(r, k) for k in RECORDER_KEYS if k != "volumes"},
            "volumes": [
                {"label": v.label, "path": v.path, "capacity_bytes": v.capacity_bytes}
                for v in r.volumes.order_by("label")
            ],
        }
        for r in Recorder.objects.order_by("code")
    ]
    cameras = []
    for camera in _cameras():
        row = _camera_row(camera)
        del row["password"]
        cameras.append({k: v for k, v in row.items() if v not in ("", None)})
    doc["cameras"] = cameras
    with transaction.atomic():
        record(actor, "inventory.export", None, detail={"format": "yaml", "cameras": len(cameras)})
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
