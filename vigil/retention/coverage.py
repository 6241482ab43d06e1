"""Coverage proof: per camera-day records computed from the catalog, the deletion ledger
read from the audit log, and daily reports signed with the site key.

A camera-day (a local day in the site's time zone) records the seconds recorded, the gaps
with their causes (``recording.Gap``), the oldest footage still available, and whether the
floor held: it did unless footage of the camera that was younger than its floor had been
deleted by the end of that day. Deletions are found in the audit log (every deletion of
footage leaves a ``footage.delete`` entry, whoever made it), so the proof does not rest on
the retention app's own word.

A signed daily report is the canonical JSON of one day's rows, the policy, the audit chain
head at signing time and the public key; its SHA-256 digest and an Ed25519 signature over
the same bytes are stored with it, and the signing itself is an audit entry.
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from vigil.audit.chain import canonical_json
from vigil.audit.models import AuditEntry, AuditHead
from vigil.recording.catalog import MAX_SEGMENT
from vigil.recording.models import Gap, Segment
from vigil.retention import policy
from vigil.retention.models import CoverageDay, EarlyDeletion, LedgerCursor
from vigil.school.models import Camera

REPORT_FORMAT = "vigil-coverage-report/1"


def site_tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC."""
    tz = site_tz()
    start = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return start, end


def local_day(moment: datetime) -> date:
    return moment.astimezone(site_tz()).date()


# ----------------------------------------------------------------- deletion ledger


def update_ledger() -> int:
    """Read new ``footage.delete`` audit entries; keep those that broke a floor."""
    cursor, _created = LedgerCursor.objects.get_or_create(pk=1)
    entries = (
        AuditEntry.objects.filter(action="footage.delete", seq__gt=cursor.audit_seq)
        .order_by("seq")
        .values("seq", "created_at", "detail_json", "actor_username")
    )
    last = cursor.audit_seq
    found: list[EarlyDeletion] = []
    floors: dict[int, int] = {}
    for entry in entries.iterator(chunk_size=2000):
        last = entry["seq"]
        detail = json.loads(entry["detail_json"] or "{}")
        for cam, span in (detail.get("cameras") or {}).items():
            try:
                cid = int(cam)
                first, newest = datetime.fromisoformat(span[0]), datetime.fromisoformat(span[1])
            except (TypeError, ValueError, IndexError):
                continue
            if cid not in floors:
                floors[cid] = policy.effective(cid).floor_days
            if newest > entry["created_at"] - timedelta(days=floors[cid]):
                found.append(
                    EarlyDeletion(
                        camera_id=cid,
                        deleted_at=entry["created_at"],
                        footage_start=first,
                        footage_end=newest,
                        floor_days=floors[cid],
                        reason=str(detail.get("reason", ""))[:64],
                        actor=entry["actor_username"][:150],
                        audit_seq=entry["seq"],
                    )
                )
    if last != cursor.audit_seq:
        with transaction.atomic():
            known = set(
                Camera.objects.filter(pk__in={e.camera_id for e in found}).values_list(
                    "pk", flat=True
                )
            )
            EarlyDeletion.objects.bulk_create([e for e in found if e.camera_id in known])
            LedgerCursor.objects.filter(pk=1).update(audit_seq=last)
    return len(found)


# ----------------------------------------------------------------------- coverage


def _clip(a: datetime, b: datetime, lo: datetime, hi: datetime) -> float:
    return max(0.0, (min(b, hi) - max(a, lo)).total_seconds())


def compute_day(
    day: date, *, now: datetime | None = None, cameras: Sequence[Camera] | None = None
) -> list[CoverageDay]:
    """Compute (or recompute) the coverage of every camera for one local day."""
    now = now or timezone.now()
    ds, de = day_bounds(day)
    horizon = min(now, de)
    elapsed = max(0.0, (horizon - ds).total_seconds())
    update_ledger()
    cams = list(cameras if cameras is not None else Camera.objects.order_by("code"))
    ids = [c.pk for c in cams]
    recorded: dict[int, float] = defaultdict(float)
    size: dict[int, int] = defaultdict(int)
    count: dict[int, int] = defaultdict(int)
    for agg in (
        Segment.objects.filter(camera_id__in=ids, start__gte=ds, start__lt=de)
        .values("camera_id")
        .annotate(d=Sum("duration"), b=Sum("size_bytes"), n=Count("id"))
    ):
        recorded[agg["camera_id"]] += float(agg["d"] or 0)
        size[agg["camera_id"]] += int(agg["b"] or 0)
        count[agg["camera_id"]] += int(agg["n"] or 0)
    # Segments straddling the day's ends: count only their part inside the day.
    for boundary, inside_starts in ((ds, False), (de, True)):
        for cid, s, e, dur in Segment.objects.filter(
            camera_id__in=ids,
            start__lt=boundary,
            end__gt=boundary,
            start__gte=boundary - MAX_SEGMENT,
        ).values_list("camera_id", "start", "end", "duration"):
            span = (e - s).total_seconds() or 1.0
            outside = (
                (e - boundary).total_seconds() if inside_starts else (boundary - s).total_seconds()
            )
            part = float(dur) * (span - outside) / span
            recorded[cid] += (part - float(dur)) if inside_starts else part
    gaps: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for cid, gs, ge, cause in (
        Gap.objects.filter(camera_id__in=ids, start__lt=de)
        .filter(Q(end__gt=ds) | Q(end__isnull=True))
        .values_list("camera_id", "start", "end", "cause")
    ):
        seconds = _clip(gs, ge or horizon, ds, horizon)
        if seconds > 0:
            gaps[cid][cause] += seconds
    oldest: dict[int, datetime | None] = {
        cid: Segment.objects.filter(camera_id=cid)
        .order_by("start")
        .values_list("start", flat=True)
        .first()
        for cid in ids
    }
    eff = policy.effective_for(ids)
    early: dict[int, int] = defaultdict(int)
    floor_cut = {cid: horizon - timedelta(days=e.floor_days) for cid, e in eff.items()}
    for cid, end in EarlyDeletion.objects.filter(
        camera_id__in=ids, deleted_at__lte=horizon
    ).values_list("camera_id", "footage_end"):
        if end > floor_cut[cid]:
            early[cid] += 1
    existing = {r.camera_id: r for r in CoverageDay.objects.filter(day=day, camera_id__in=ids)}
    out: list[CoverageDay] = []
    for cam in cams:
        cid = cam.pk
        available = round(recorded.get(cid, 0.0), 3)
        previous = existing.get(cid)
        kept = max(available, previous.recorded_seconds) if previous else available
        # Expected from when the camera joined (or its first footage, if older), never for
        # a decommissioned camera.
        joined = min(cam.created_at, oldest[cid] or cam.created_at)
        expected = 0.0
        if cam.state != Camera.State.DECOMMISSIONED:
            expected = max(0.0, (horizon - max(ds, joined)).total_seconds()) if elapsed else 0.0
        causes = {k: round(v, 3) for k, v in sorted(gaps.get(cid, {}).items())}
        unexplained = max(0.0, expected - kept - sum(causes.values()))
        row = previous or CoverageDay(camera=cam, day=day)
        row.expected_seconds = round(expected, 3)
        row.recorded_seconds = kept
        row.available_seconds = available
        row.segments = count.get(cid, 0)
        row.bytes = size.get(cid, 0)
        row.gap_causes_json = json.dumps(causes, sort_keys=True)
        row.unexplained_seconds = round(unexplained, 3)
        row.oldest_footage = oldest.get(cid)
        row.floor_days = eff[cid].floor_days
        row.early_deletions = early.get(cid, 0)
        row.floor_met = row.early_deletions == 0
        row.computed_at = now
        out.append(row)
    fields = [
        "expected_seconds",
        "recorded_seconds",
        "available_seconds",
        "segments",
        "bytes",
        "gap_causes_json",
        "unexplained_seconds",
        "oldest_footage",
        "floor_days",
        "floor_met",
        "early_deletions",
        "computed_at",
    ]
    with transaction.atomic():
        CoverageDay.objects.bulk_update([r for r in out if r.pk], fields, batch_size=500)
        CoverageDay.objects.bulk_create([r for r in out if not r.pk], batch_size=500)
    return out


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def ensure_days(
    first: date, last: date, *, now: datetime | None = None, recompute: bool = False
) -> None:
    """Compute the days that have no rows yet, or were computed before they ended."""
    now = now or timezone.now()
    for day in days_between(first, last):
        ds, de = day_bounds(day)
        if ds > now:
            continue
        stale = CoverageDay.objects.filter(
            day=day, computed_at__lt=min(de, now - timedelta(minutes=5))
        )
        if recompute or not CoverageDay.objects.filter(day=day).exists() or stale.exists():
            compute_day(day, now=now)


# ------------------------------------------------------------------- report rows


def row_of(c: CoverageDay) -> dict[str, Any]:
    """One camera-day as it appears in reports (and in a signed payload)."""
    return {
        "day": c.day.isoformat(),
        "camera": c.camera.code,
        "name": c.camera.name,
        "recorder": c.camera.recorder.code,
        "expected_seconds": round(c.expected_seconds, 1),
        "recorded_seconds": round(c.recorded_seconds, 1),
        "available_seconds": round(c.available_seconds, 1),
        "segments": c.segments,
        "bytes": c.bytes,
        "gaps": {k: round(v, 1) for k, v in sorted(c.gap_causes.items())},
        "unexplained_seconds": round(c.unexplained_seconds, 1),
        "oldest_footage": c.oldest_footage.astimezone(UTC).isoformat()
        if c.oldest_footage
        else None,
        "floor_days": c.floor_days,
        "floor_met": c.floor_met,
        "early_deletions": c.early_deletions,
    }


def coverage_rows(first: date, last: date) -> list[dict[str, Any]]:
    qs = (
        CoverageDay.objects.filter(day__gte=first, day__lte=last)
        .select_related("camera", "camera__recorder")
        .order_by("day", "camera__code")
    )
    return [row_of(c) for c in qs]


@dataclass
class DaySummary:
    day: date
    cameras: int
    recorded_percent: float
    floor_met: int
    floor_missed: int
    signed: bool = False
    digest: str = ""
    expected: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, float | int]:
    rows = list(rows)
    expected = sum(r["expected_seconds"] for r in rows)
    recorded = sum(min(r["recorded_seconds"], r["expected_seconds"]) for r in rows)
    return {
        "cameras": len(rows),
        "expected_seconds": round(expected, 1),
        "recorded_seconds": round(recorded, 1),
        "recorded_percent": round(100.0 * recorded / expected, 2) if expected else 0.0,
        "floor_met": sum(1 for r in rows if r["floor_met"]),
        "floor_missed": sum(1 for r in rows if not r["floor_met"]),
    }


def audit_head() -> tuple[int, str]:
    head = AuditHead.objects.filter(pk=1).first()
    if head is None:
        from vigil.audit.chain import GENESIS_HASH

        return 0, GENESIS_HASH
    return int(head.last_seq), str(head.last_hash)


def payload_for(day: date, *, now: datetime | None = None) -> dict[str, Any]:
    from vigil.core.keys import fingerprint, public_key_b64
    from vigil.school.models import School

    now = now or timezone.now()
    rows = coverage_rows(day, day)
    site = policy.site_effective()
    school = School.objects.first()
    seq, head_hash = audit_head()
    return {
        "format": REPORT_FORMAT,
        "school": {
            "name": school.name if school else "",
            "installation": str(school.installation_id) if school else "",
        },
        "day": day.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "generated_at": now.astimezone(UTC).isoformat(),
        "policy": {"floor_days": site.floor_days, "ceiling_days": site.ceiling_days},
        "audit_head": {"seq": seq, "hash": head_hash},
        "key": {"public_key": public_key_b64(), "fingerprint": fingerprint()},
        "cameras": rows,
        "totals": summarise(rows),
    }


def digest_of(payload_text: str) -> str:
    return hashlib.sha256(payload_text.encode("utf-8")).hexdigest()


def canonical(payload: dict[str, Any]) -> str:
    return canonical_json(payload)
