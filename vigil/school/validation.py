"""Field rules for the site inventory, shared by the web forms, the CLI and the importer.

Each ``clean_*`` function takes raw values (strings from a form, a CSV cell or YAML
scalars), returns cleaned values, and reports every problem as a ``FieldError`` instead
of stopping at the first one, so an import can list all bad rows at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from vigil.school.models import Area, Camera, Department, Inspection
from vigil.school.streamurl import InvalidStreamURL, parse_stream_url

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ValidationFailed(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


class _Cleaner:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []
        self.out: dict[str, Any] = {}

    def text(self, name: str, *, required: bool = False, max_length: int = 200) -> str:
        value = self.raw.get(name)
        text = "" if value is None else str(value).strip()
        if required and not text:
            self.errors.append(FieldError(name, "is required"))
        elif len(text) > max_length:
            self.errors.append(FieldError(name, f"is longer than {max_length} characters"))
        self.out[name] = text
        return text

    def code(self, name: str = "code", *, required: bool = True) -> str:
        text = self.text(name, required=required, max_length=40)
        if text and not CODE_RE.match(text):
            self.errors.append(FieldError(name, "use letters, digits, '.', '-' or '_' (up to 40)"))
        return text

    def choice(self, name: str, choices: Mapping[str, str], default: str) -> str:
        text = self.text(name).lower()
        if not text:
            self.out[name] = default
            return default
        value = choices.get(text)
        if value is None:
            allowed = ", ".join(sorted(set(choices.values())))
            self.errors.append(FieldError(name, f"'{text}' is not one of: {allowed}"))
            value = default
        self.out[name] = value
        return value

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        value = self.raw.get(name)
        if value is None or str(value).strip() == "":
            self.out[name] = default
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            self.errors.append(FieldError(name, f"'{value}' is not a whole number"))
            return default
        if not low <= number <= high:
            self.errors.append(FieldError(name, f"must be between {low} and {high}"))
        self.out[name] = number
        return number

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self.raw.get(name)
        if value is None or str(value).strip() == "":
            self.out[name] = default
            return default
        if isinstance(value, bool):
            self.out[name] = value
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "y", "có"):
            result = True
        elif text in ("0", "false", "no", "n", "không"):
            result = False
        else:
            self.errors.append(FieldError(name, f"'{value}' is not yes/no"))
            result = default
        self.out[name] = result
        return result

    def day(self, name: str, *, required: bool = False) -> date | None:
        value = self.raw.get(name)
        if isinstance(value, date):
            self.out[name] = value
            return value
        text = "" if value is None else str(value).strip()
        if not text:
            if required:
                self.errors.append(FieldError(name, "is required"))
            self.out[name] = None
            return None
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            self.errors.append(FieldError(name, f"'{text}' is not a date (YYYY-MM-DD)"))
            parsed = None
        self.out[name] = parsed
        return parsed

    def reference(self, name: str, exists: Callable[[str], bool], what: str) -> str:
        text = self.text(name, required=True, max_length=40)
        if text and not exists(text):
            self.errors.append(FieldError(name, f"no {what} with code '{text}'"))
        return text


def _choices(enum: Any, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    table = {str(v): str(v) for v in enum.values}
    table.update({str(label).lower(): str(v) for v, label in enum.choices})
    table.update(extra or {})
    return table


CODEC_CHOICES = _choices(
    Camera.Codec, {"h.264": "h264", "avc": "h264", "h.265": "h265", "hevc": "h265"}
)
STATE_CHOICES = _choices(Camera.State, {"in service": "in_service", "maintenance": "maintenance"})
RESULT_CHOICES = _choices(Inspection.Result, {"pass": "passed", "fail": "failed"})
AREA_KIND_CHOICES = _choices(Area.Kind)
DEPARTMENT_KIND_CHOICES = _choices(Department.Kind)


@dataclass
class Lookups:
    """How to check that a referenced code exists (the database, plus rows being imported)."""

    area: Callable[[str], bool]
    recorder: Callable[[str], bool]
    supplier: Callable[[str], bool]
    department: Callable[[str], bool]


def clean_camera(
    raw: Mapping[str, Any], lookups: Lookups
) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.code()
    c.text("name", required=True)
    c.reference("area", lookups.area, "area")
    c.reference("recorder", lookups.recorder, "recorder")
    username = c.text("username", max_length=200)
    password = c.text("password", max_length=200)
    for name in ("main_url", "sub_url"):
        text = c.text(name, required=(name == "main_url"), max_length=500)
        if not text:
            continue
        try:
            parsed = parse_stream_url(text)
        except InvalidStreamURL as exc:
            c.errors.append(FieldError(name, str(exc)))
            continue
        c.out[name] = parsed.url
        if parsed.has_credentials:
            if username and parsed.username and parsed.username != username:
                c.errors.append(
                    FieldError(name, "the user in the URL differs from the username given")
                )
            username = username or parsed.username
            password = password or parsed.password
    c.out["username"] = username
    c.out["password"] = password
    c.text("manufacturer", max_length=100)
    c.text("model", max_length=100)
    c.choice("codec", CODEC_CHOICES, Camera.Codec.H264)
    c.integer("width", default=1920, low=160, high=8192)
    c.integer("height", default=1080, low=120, high=8192)
    c.integer("fps", default=15, low=1, high=120)
    c.integer("bitrate_kbps", default=2048, low=16, high=100_000)
    c.choice("sub_codec", CODEC_CHOICES, Camera.Codec.H264)
    c.integer("sub_width", default=640, low=160, high=8192)
    c.integer("sub_height", default=360, low=120, high=8192)
    supplier = c.text("supplier", max_length=40)
    if supplier and not lookups.supplier(supplier):
        c.errors.append(FieldError("supplier", f"no supplier with code '{supplier}'"))
    c.day("install_date")
    c.choice("state", STATE_CHOICES, Camera.State.IN_SERVICE)
    c.text("position_notes", max_length=300)
    inspected = c.day("inspection_date")
    result = c.text("inspection_result").lower()
    if inspected is not None:
        c.choice("inspection_result", RESULT_CHOICES, Inspection.Result.PASSED)
    elif result:
        c.errors.append(FieldError("inspection_result", "given without an inspection_date"))
    c.text("inspector", max_length=200)
    c.text("certificate", max_length=120)
    return c.out, c.errors


def clean_department(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.code()
    c.text("name", required=True)
    c.choice("kind", DEPARTMENT_KIND_CHOICES, Department.Kind.OTHER)
    c.boolean("is_security_office")
    c.text("notes", max_length=2000)
    return c.out, c.errors


def clean_area(raw: Mapping[str, Any], lookups: Lookups) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.code()
    c.text("name", required=True)
    c.choice("kind", AREA_KIND_CHOICES, Area.Kind.OTHER)
    c.text("building", max_length=100)
    c.reference("department", lookups.department, "department")
    return c.out, c.errors


def clean_supplier(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.code()
    c.text("name", required=True)
    c.text("contact_person")
    c.text("phone", max_length=40)
    email = c.text("email", max_length=254)
    if email and "@" not in email:
        c.errors.append(FieldError("email", f"'{email}' is not an email address"))
    c.text("contract_reference", max_length=120)
    return c.out, c.errors


def clean_recorder(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.code()
    c.text("name", required=True)
    c.text("model", max_length=120)
    c.text("serial_number", max_length=120)
    c.text("location")
    c.text("notes", max_length=2000)
    return c.out, c.errors


def clean_volume(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    c = _Cleaner(raw)
    c.text("label", required=True, max_length=80)
    path = c.text("path", required=True, max_length=500)
    if path and not path.startswith("/"):
        c.errors.append(FieldError("path", "must be an absolute path"))
    c.integer("capacity_bytes", default=0, low=1, high=10**16)
    if not str(raw.get("capacity_bytes") or "").strip():
        c.errors.append(FieldError("capacity_bytes", "is required"))
    return c.out, c.errors
