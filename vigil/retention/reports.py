"""Signed daily coverage reports: signing, export (JSON, CSV, PDF) and verification.

The signed bytes are the report's canonical JSON text (``payload``). An export carries
the payload and its signature in an *envelope*:

    {"format": "vigil-signed-report/1", "day": ..., "payload": "<canonical JSON text>",
     "digest": "<sha256 hex of payload>", "signature": "<base64 Ed25519 over payload>",
     "public_key": "<base64 raw key>", "fingerprint": "..."}

* JSON export: the envelope itself.
* CSV export: the table (one row per camera-day), then one comment line per signed day:
  ``# vigil-signed-report: <base64 of the envelope>``. Verification checks each envelope
  and that the table's rows for that day are exactly those the signed payload gives.
* PDF export: the table for people, the digest and key fingerprint printed on the page,
  and each envelope attached (uncompressed) as ``vigil-report-<day>.json``.

Anyone can check an envelope without Vigil: SHA-256 of the payload text must equal the
digest, and the Ed25519 signature must verify over the payload bytes with the public key,
whose fingerprint is shown on Vigil's pages.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.audit.services import record
from vigil.retention import coverage
from vigil.retention.models import CoverageReport

ENVELOPE_FORMAT = "vigil-signed-report/1"
CSV_MARK = "# vigil-signed-report: "
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

CSV_COLUMNS = [
    "day",
    "camera",
    "name",
    "recorder",
    "expected_seconds",
    "recorded_seconds",
    "available_seconds",
    "coverage_percent",
    "segments",
    "bytes",
    "gaps",
    "unexplained_seconds",
    "oldest_footage",
    "floor_days",
    "floor_met",
    "early_deletions",
]


class ReportError(Exception):
    pass


# ------------------------------------------------------------------------- signing


def day_complete(day: date, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    _start, end = coverage.day_bounds(day)
    return now >= end + timedelta(minutes=settings.VIGIL.retention.report_grace_minutes)


def sign_day(day: date, *, actor: Actor, now: datetime | None = None) -> CoverageReport:
    """Compute the day's coverage afresh and sign it. A day is signed once."""
    from vigil.core.keys import fingerprint, public_key_b64, sign

    now = now or timezone.now()
    existing = CoverageReport.objects.filter(day=day).first()
    if existing is not None:
        return existing
    if not day_complete(day, now):
        raise ReportError(f"{day} is not over yet (reports are signed after the day ends)")
    coverage.compute_day(day, now=now)
    with transaction.atomic():
        payload = coverage.payload_for(day, now=now)
        text = coverage.canonical(payload)
        digest = coverage.digest_of(text)
        signature = base64.b64encode(sign(text.encode("utf-8"))).decode("ascii")
        try:
            with transaction.atomic():
                report = CoverageReport.objects.create(
                    day=day,
                    payload=text,
                    digest=digest,
                    signature=signature,
                    public_key=public_key_b64(),
                    key_fingerprint=fingerprint(),
                    audit_seq=payload["audit_head"]["seq"],
                    audit_head_hash=payload["audit_head"]["hash"],
                    signed_at=now,
                    signed_by=actor.username,
                )
        except IntegrityError:  # signed meanwhile by another process
            return CoverageReport.objects.get(day=day)
        record(
            actor,
            "retention.report.sign",
            report,
            detail={
                "day": day.isoformat(),
                "digest": digest,
                "fingerprint": report.key_fingerprint,
                "audit_seq": report.audit_seq,
            },
        )
    return report


def sign_completed_days(
    *, actor: Actor, now: datetime | None = None, back_days: int = 31
) -> list[CoverageReport]:
    """Sign every finished day since the installation (at most ``back_days`` back)."""
    from vigil.school.models import School

    now = now or timezone.now()
    school = School.objects.first()
    if school is None:
        return []
    first = max(
        coverage.local_day(school.created_at), coverage.local_day(now) - timedelta(back_days)
    )
    signed = set(CoverageReport.objects.filter(day__gte=first).values_list("day", flat=True))
    out = []
    for day in coverage.days_between(first, coverage.local_day(now)):
        if day not in signed and day_complete(day, now):
            out.append(sign_day(day, actor=actor, now=now))
    return out


# ----------------------------------------------------------------------- envelopes


def envelope(report: CoverageReport) -> dict[str, str]:
    return {
        "format": ENVELOPE_FORMAT,
        "day": report.day.isoformat(),
        "payload": report.payload,
        "digest": report.digest,
        "signature": report.signature,
        "public_key": report.public_key,
        "fingerprint": report.key_fingerprint,
    }


def envelope_json(report: CoverageReport) -> str:
    return json.dumps(envelope(report), ensure_ascii=True, sort_keys=True, separators=(",", ":"))


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Verification:
    subject: str
    checks: list[Check] = field(default_factory=list)
    days: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "days": self.days,
            "checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _verify_envelope(env: dict[str, Any], result: Verification, prefix: str = "") -> dict[str, Any]:
    """Digest, signature and key of one envelope; returns the payload (or {})."""
    from vigil.core.keys import fingerprint, public_key_b64

    text = env.get("payload")
    if env.get("format") != ENVELOPE_FORMAT or not isinstance(text, str):
        result.add(prefix + "format", False, "not a Vigil signed report")
        return {}
    digest = coverage.digest_of(text)
    result.add(prefix + "digest", digest == env.get("digest"), digest)
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(env.get("public_key", "")))
        key.verify(base64.b64decode(env.get("signature", "")), text.encode("utf-8"))
        result.add(prefix + "signature", True, "Ed25519, key " + str(env.get("fingerprint")))
    except (InvalidSignature, ValueError, TypeError) as exc:
        result.add(prefix + "signature", False, f"does not verify ({type(exc).__name__})")
    site_key = public_key_b64()
    result.add(
        prefix + "site key",
        env.get("public_key") == site_key,
        "signed with this site's key " + fingerprint()
        if env.get("public_key") == site_key
        else "signed with another key (" + str(env.get("fingerprint")) + ")",
    )
    try:
        payload: dict[str, Any] = json.loads(text)
    except ValueError:
        result.add(prefix + "payload", False, "not JSON")
        return {}
    if payload.get("day") != env.get("day"):
        result.add(prefix + "day", False, "the envelope's day differs from the payload's")
    if payload.get("key", {}).get("public_key") != env.get("public_key"):
        result.add(prefix + "key named", False, "the payload names another key")
    result.days.append(str(payload.get("day")))
    return payload


def _check_audit(payload: dict[str, Any], digest: str, result: Verification, prefix: str) -> None:
    """The signing is in the audit chain, after the chain head the report names."""
    head = payload.get("audit_head") or {}
    seq = int(head.get("seq") or 0)
    if seq:
        entry = AuditEntry.objects.filter(seq=seq).values_list("entry_hash", flat=True).first()
        result.add(
            prefix + "audit head",
            entry == head.get("hash"),
            f"entry #{seq} "
            + ("matches" if entry == head.get("hash") else "differs or is missing"),
        )
    signed = AuditEntry.objects.filter(
        action="retention.report.sign", seq__gt=seq, detail_json__contains=digest
    ).first()
    result.add(
        prefix + "audit entry",
        signed is not None,
        f"signed at audit entry #{signed.seq}" if signed else "no audit entry records this signing",
    )


def verify_stored(report: CoverageReport) -> Verification:
    result = Verification(f"stored report {report.day}")
    payload = _verify_envelope(envelope(report), result)
    if payload:
        _check_audit(payload, report.digest, result, "")
    return result


def verify_file(data: bytes, name: str = "") -> Verification:
    """Verify an exported report: JSON envelope, CSV or PDF."""
    result = Verification(name or "file")
    stripped = data.lstrip()
    if data.startswith(b"%PDF"):
        envelopes = _pdf_envelopes(data)
        if not envelopes:
            result.add("signed data", False, "no Vigil signed report is attached to this PDF")
        for env in envelopes:
            prefix = f"{env.get('day')}: "
            payload = _verify_envelope(env, result, prefix)
            if payload:
                _check_stored(env, result, prefix)
        return result
    if stripped.startswith(b"{"):
        try:
            env = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            result.add("format", False, "not JSON")
            return result
        if isinstance(env, dict) and "signed_reports" in env:
            _verify_json_export(env, result)
            return result
        payload = _verify_envelope(env, result)
        if payload:
            _check_stored(env, result, "")
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.add("format", False, "neither JSON, CSV nor PDF")
        return result
    _verify_csv(text, result)
    return result


def _verify_json_export(data: dict[str, Any], result: Verification) -> None:
    """A range export: each signed day's envelope, and its rows equal to the signed ones."""
    envelopes = data.get("signed_reports") or []
    if not envelopes:
        result.add("signed data", False, "no signed day in this export")
        return
    rows = data.get("rows") or []
    for env in envelopes:
        prefix = f"{env.get('day')}: "
        payload = _verify_envelope(env, result, prefix)
        if not payload:
            continue
        got = [r for r in rows if r.get("day") == payload["day"]]
        same = got == payload.get("cameras", [])
        result.add(
            prefix + "table",
            same,
            "the rows match the signed data" if same else "the rows differ from the signed data",
        )
        _check_stored(env, result, prefix)


def _check_stored(env: dict[str, Any], result: Verification, prefix: str) -> None:
    try:
        day = date.fromisoformat(str(env.get("day")))
    except ValueError:
        return
    stored = CoverageReport.objects.filter(day=day).first()
    if stored is None:
        result.add(prefix + "stored copy", True, "no copy of this day's report in this database")
        return
    result.add(
        prefix + "stored copy",
        stored.digest == env.get("digest"),
        "identical to the stored report"
        if stored.digest == env.get("digest")
        else "differs from the report stored for this day",
    )


def _verify_csv(text: str, result: Verification) -> None:
    lines = text.splitlines()
    table = [ln for ln in lines if not ln.startswith("#")]
    marks = [ln[len(CSV_MARK) :] for ln in lines if ln.startswith(CSV_MARK)]
    if not marks:
        result.add("signed data", False, "no Vigil signature lines in this CSV")
        return
    rows = list(csv.reader(io.StringIO("\n".join(table))))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    if header != CSV_COLUMNS:
        result.add("columns", False, "the header is not a Vigil coverage report's")
        return
    by_day: dict[str, list[list[str]]] = {}
    for row in body:
        if row:
            by_day.setdefault(row[0], []).append(row)
    signed_days = set()
    for mark in marks:
        try:
            env = json.loads(base64.b64decode(mark).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            result.add("signature line", False, "unreadable")
            continue
        prefix = f"{env.get('day')}: "
        payload = _verify_envelope(env, result, prefix)
        if not payload:
            continue
        signed_days.add(payload["day"])
        expected = [csv_cells(r) for r in payload.get("cameras", [])]
        got = by_day.get(payload["day"], [])
        result.add(
            prefix + "table",
            got == expected,
            "the rows match the signed data"
            if got == expected
            else f"{_diff_count(got, expected)} row(s) differ from the signed data",
        )
        _check_stored(env, result, prefix)
    unsigned = sorted(set(by_day) - signed_days)
    if unsigned:
        result.add("unsigned days", True, "rows without a signature: " + ", ".join(unsigned))


def _diff_count(got: list[list[str]], expected: list[list[str]]) -> int:
    differ = sum(1 for a, b in zip(got, expected, strict=False) if a != b)
    return differ + abs(len(got) - len(expected))


def _pdf_envelopes(data: bytes) -> list[dict[str, Any]]:
    out = []
    # Envelopes are written with sorted keys: "day" first, "signature" last; base64 and
    # hex hold no quotes, and the payload is one JSON string, so "} ends the envelope.
    for match in re.finditer(rb'\{"day":"[0-9-]{10}","digest":"[0-9a-f]{64}"', data):
        sig = data.find(b'"signature":"', match.end())
        end = data.find(b'"}', sig + 13) if sig >= 0 else -1
        if end < 0:
            continue
        try:
            out.append(json.loads(data[match.start() : end + 2].decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            continue
    return out


# ------------------------------------------------------------------------- exports


def _local(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(coverage.site_tz()).strftime("%Y-%m-%d %H:%M:%S")


def _percent(row: dict[str, Any]) -> str:
    expected = row["expected_seconds"]
    if not expected:
        return ""
    return f"{100.0 * min(row['recorded_seconds'], expected) / expected:.2f}"


def csv_cells(row: dict[str, Any]) -> list[str]:
    """A report row as CSV cells: a pure function of the row (signed rows re-render alike)."""
    gaps = "; ".join(f"{k}={v:g}" for k, v in sorted(row["gaps"].items()))
    return [
        row["day"],
        row["camera"],
        row["name"],
        row["recorder"],
        f"{row['expected_seconds']:.1f}",
        f"{row['recorded_seconds']:.1f}",
        f"{row['available_seconds']:.1f}",
        _percent(row),
        str(row["segments"]),
        str(row["bytes"]),
        gaps,
        f"{row['unexplained_seconds']:.1f}",
        _local(row["oldest_footage"]),
        str(row["floor_days"]),
        "yes" if row["floor_met"] else "no",
        str(row["early_deletions"]),
    ]


@dataclass
class ReportData:
    first: date
    last: date
    rows: list[dict[str, Any]]
    signed: dict[str, CoverageReport]


def report_data(
    first: date, last: date, *, now: datetime | None = None, recompute: bool = False
) -> ReportData:
    """Rows for a range of days: a signed day's rows come from its signed payload (what was
    signed is what is shown), the others from the coverage records (computed if needed)."""
    if last < first:
        raise ReportError("the end date is before the start date")
    if (last - first).days > 366:
        raise ReportError("a report covers at most 366 days")
    coverage.ensure_days(first, last, now=now, recompute=recompute)
    signed = {
        r.day.isoformat(): r for r in CoverageReport.objects.filter(day__gte=first, day__lte=last)
    }
    rows: list[dict[str, Any]] = []
    unsigned = [r for r in coverage.coverage_rows(first, last) if r["day"] not in signed]
    for day in coverage.days_between(first, last):
        key = day.isoformat()
        if key in signed:
            rows.extend(json.loads(signed[key].payload)["cameras"])
        else:
            rows.extend(r for r in unsigned if r["day"] == key)
    return ReportData(first, last, rows, signed)


def render_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in data.rows:
        writer.writerow(csv_cells(row))
    for day in sorted(data.signed):
        out.write(
            CSV_MARK + base64.b64encode(envelope_json(data.signed[day]).encode()).decode() + "\n"
        )
    return out.getvalue()


def render_json(data: ReportData) -> str:
    return json.dumps(
        {
            "from": data.first.isoformat(),
            "to": data.last.isoformat(),
            "rows": data.rows,
            "signed_reports": [envelope(data.signed[d]) for d in sorted(data.signed)],
        },
        ensure_ascii=False,
        indent=2,
    )


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render_pdf(data: ReportData) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    from vigil.core.keys import fingerprint
    from vigil.school.models import School

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter
    school = School.objects.first()
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(_("Coverage report") + f" {data.first}–{data.last}")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    title = _("Coverage report") + f": {data.first.isoformat()} — {data.last.isoformat()}"
    pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 9)
    if school is not None:
        pdf.cell(0, 5, school.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(
        0,
        5,
        _("Times in %(tz)s. Site key fingerprint: %(fp)s")
        % {"tz": settings.TIME_ZONE, "fp": fingerprint()},
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    headers = [
        (_("Day"), 20),
        (_("Camera"), 20),
        (_("Name"), 62),
        (_("Recorder"), 18),
        (_("Recorded"), 20),
        (_("Coverage %"), 18),
        (_("Gaps (causes)"), 60),
        (_("Oldest footage"), 32),
        (_("Floor met"), 18),
    ]

    def header_row() -> None:
        pdf.set_font("DejaVu", "B", 7.5)
        for text, width in headers:
            pdf.cell(width, 5, text, border=1)
        pdf.ln()
        pdf.set_font("DejaVu", "", 7)

    header_row()
    for row in data.rows:
        if pdf.get_y() > pdf.h - 20:
            pdf.add_page()
            header_row()
        gaps = ", ".join(f"{k} {_hms(v)}" for k, v in sorted(row["gaps"].items()))
        cells = [
            row["day"],
            row["camera"],
            row["name"][:48],
            row["recorder"],
            _hms(row["recorded_seconds"]),
            _percent(row),
            gaps[:52],
            _local(row["oldest_footage"]),
            (_("yes") if row["floor_met"] else _("NO")) + f" ({row['floor_days']}d)",
        ]
        for (_text, width), value in zip(headers, cells, strict=True):
            pdf.cell(width, 4.5, value, border=1)
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, _("Signatures"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 7.5)
    if not data.signed:
        pdf.cell(
            0,
            4.5,
            _("No day in this range has a signed report yet."),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    for day in sorted(data.signed):
        r = data.signed[day]
        pdf.multi_cell(
            0,
            4,
            f"{day}: SHA-256 {r.digest} · Ed25519 {r.key_fingerprint} · "
            + _("audit entry #%(seq)s") % {"seq": r.audit_seq}
            + f" · {r.signature}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.embed_file(
            bytes=envelope_json(r).encode("ascii"),
            basename=f"vigil-report-{day}.json",
            desc=f"Vigil signed coverage report {day}",
            modification_date=datetime(2000, 1, 1, tzinfo=UTC),
            creation_date=datetime(2000, 1, 1, tzinfo=UTC),
            compress=False,
        )
    return bytes(pdf.output())


def report_summaries(first: date, last: date) -> list[coverage.DaySummary]:
    rows = coverage.coverage_rows(first, last)
    signed = {r.day: r for r in CoverageReport.objects.filter(day__gte=first, day__lte=last)}
    out = []
    for day in coverage.days_between(first, last):
        day_rows = [r for r in rows if r["day"] == day.isoformat()]
        if not day_rows and day not in signed:
            continue
        s = coverage.summarise(day_rows)
        report = signed.get(day)
        out.append(
            coverage.DaySummary(
                day,
                int(s["cameras"]),
                float(s["recorded_percent"]),
                int(s["floor_met"]),
                int(s["floor_missed"]),
                report is not None,
                report.digest if report else "",
                float(s["expected_seconds"]),
                day_rows,
            )
        )
    return out
