"""The capacity model: from measured bitrates and real volume sizes to projected retention
per camera and recorder, the date the floor would be breached, and a proposed
camera-to-recorder assignment (the algorithm is in ``planner``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Min, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.recording.models import CameraHealth, Segment
from vigil.retention import planner, policy
from vigil.retention.models import Hold
from vigil.retention.volumes import FsInfo, capacities, used_bytes
from vigil.school.models import Camera, Recorder, StorageVolume

# A measured bitrate needs at least this much recorded footage in the window.
MIN_MEASURED_SECONDS = 600.0


@dataclass(frozen=True)
class Rate:
    bytes_per_second: float
    source: str  # measured, health, spec, what-if

    @property
    def kbps(self) -> float:
        return self.bytes_per_second * 8 / 1000

    @property
    def bytes_per_day(self) -> float:
        return self.bytes_per_second * planner.SECONDS_PER_DAY


def camera_rates(
    cameras: Sequence[Camera], now: datetime | None = None, window_hours: int | None = None
) -> dict[int, Rate]:
    """Each camera's bitrate: measured from its recent segments (bytes over recorded
    seconds), else the recorder's live measurement, else the specification."""
    now = now or timezone.now()
    hours = window_hours or settings.VIGIL.retention.bitrate_window_hours
    ids = [c.pk for c in cameras]
    measured: dict[int, Rate] = {}
    rows = (
        Segment.objects.filter(camera_id__in=ids, start__gte=now - timedelta(hours=hours))
        .filter(start__lt=now)
        .values("camera_id")
        .annotate(b=Sum("size_bytes"), d=Sum("duration"))
    )
    for row in rows:
        if row["d"] and row["d"] >= MIN_MEASURED_SECONDS and row["b"]:
            measured[row["camera_id"]] = Rate(row["b"] / row["d"], "measured")
    health = {
        h.camera_id: h.bitrate_bps
        for h in CameraHealth.objects.filter(camera_id__in=ids, bitrate_bps__gt=0)
    }
    out: dict[int, Rate] = {}
    for c in cameras:
        if c.pk in measured:
            out[c.pk] = measured[c.pk]
        elif c.pk in health:
            out[c.pk] = Rate(health[c.pk] / 8, "health")
        else:
            out[c.pk] = Rate(c.bitrate_kbps * 1000 / 8, "spec")
    return out


@dataclass
class WhatIf:
    """A hypothetical change: extra cameras on recorders, cameras taken away."""

    add: list[tuple[str, int]] = field(default_factory=list)  # (recorder code, kbit/s)
    remove: list[str] = field(default_factory=list)  # camera codes

    @classmethod
    def parse(cls, add: Iterable[str] = (), remove: Iterable[str] = ()) -> WhatIf:
        added: list[tuple[str, int]] = []
        for item in add:
            recorder, sep, kbps = item.partition(":")
            if not sep or not recorder.strip():
                raise ValueError(
                    _("'%(item)s': use RECORDER:KBPS, e.g. NVR-03:4096") % {"item": item}
                )
            try:
                value = int(kbps)
            except ValueError:
                raise ValueError(
                    _("'%(item)s': the bitrate must be kbit/s, a whole number") % {"item": item}
                ) from None
            if not 16 <= value <= 100_000:
                raise ValueError(
                    _("'%(item)s': the bitrate must be between 16 and 100000 kbit/s")
                    % {"item": item}
                )
            added.append((recorder.strip(), value))
        return cls(added, [r.strip() for r in remove if r.strip()])

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


@dataclass
class CameraRow:
    code: str
    name: str
    recorder: str
    kbps: float
    rate_source: str
    floor_days: int
    ceiling_days: int | None
    projected_days: float
    holds_floor: bool
    oldest_footage: datetime | None
    what_if: bool = False
    proposed_recorder: str = ""


@dataclass
class VolumeRow:
    label: str
    path: str
    declared_bytes: int
    effective_bytes: int
    filesystem_bytes: int | None
    note: str


@dataclass
class RecorderRow:
    code: str
    name: str
    cameras: int
    declared_bytes: int
    effective_bytes: int
    usable_bytes: int
    used_bytes: int
    held_bytes: int
    bytes_per_day: float
    projected_days: float
    projected_days_declared: float
    floor_days: int
    holds_floor: bool
    breach_date: datetime | None
    limited_by_fs: bool
    volumes: list[VolumeRow] = field(default_factory=list)
    proposed_days: float = 0.0
    proposed_cameras: int = 0


@dataclass
class Plan:
    generated_at: datetime
    reserve_percent: float
    floor_days: int
    recorders: list[RecorderRow]
    cameras: list[CameraRow]
    upper_bound_days: float
    proposed_minimum_days: float
    current_minimum_days: float
    moves: list[dict[str, str]]
    algorithm: str
    notes: list[str]
    what_if: dict[str, Any]
    capacity_basis: str  # "effective" or "declared"

    @property
    def holds_floor(self) -> bool:
        return all(r.holds_floor for r in self.recorders if r.cameras)

    @property
    def proposal_holds_floor(self) -> bool:
        return self.proposed_minimum_days >= self.floor_days

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, float):
                return round(value, 3)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        data = clean(asdict(self))
        data["holds_floor"] = self.holds_floor
        data["proposal_holds_floor"] = self.proposal_holds_floor
        return dict(data)


def _held_bytes(recorder_volumes: list[int]) -> int:
    total = 0
    for hold in Hold.objects.active().prefetch_related("cameras"):
        total += (
            Segment.objects.filter(
                volume_id__in=recorder_volumes,
                camera__in=hold.cameras.all(),
                start__lt=hold.end,
                end__gt=hold.start,
            ).aggregate(s=Sum("size_bytes"))["s"]
            or 0
        )
    return int(total)


def _fs_total(fs: FsInfo | None) -> int | None:
    return fs.total if fs is not None else None


def _days(value: float) -> float:
    return min(value, planner.INFINITE_DAYS)


def build_plan(
    what_if: WhatIf | None = None,
    *,
    now: datetime | None = None,
    reserve_percent: float | None = None,
    declared_only: bool = False,
    tolerance_days: float = 0.25,
) -> Plan:
    """Projected retention for the site as it is (or with the what-if changes)."""
    now = now or timezone.now()
    what_if = what_if or WhatIf()
    reserve = (
        settings.VIGIL.retention.reserve_percent if reserve_percent is None else reserve_percent
    )
    keep = 1 - reserve / 100.0
    notes: list[str] = []
    recorders = list(Recorder.objects.order_by("code").prefetch_related("volumes"))
    known = {r.code for r in recorders}
    for code, _kbps in what_if.add:
        if code not in known:
            raise ValueError(
                _("no recorder with code '%(code)s' (known: %(known)s)")
                % {"code": code, "known": ", ".join(sorted(known))}
            )
    cameras = list(
        Camera.objects.exclude(state=Camera.State.DECOMMISSIONED)
        .exclude(code__in=what_if.remove)
        .select_related("recorder")
        .order_by("code")
    )
    missing = set(what_if.remove) - set(Camera.objects.values_list("code", flat=True))
    if missing:
        raise ValueError(_("no camera with code %(codes)s") % {"codes": ", ".join(sorted(missing))})
    rates = camera_rates(cameras, now)
    eff = policy.effective_for(c.pk for c in cameras)
    site = policy.site_effective()
    oldest = {
        row["camera_id"]: row["m"]
        for row in Segment.objects.filter(camera_id__in=[c.pk for c in cameras])
        .values("camera_id")
        .annotate(m=Min("start"))
    }
    volumes = list(StorageVolume.objects.select_related("recorder"))
    caps = capacities(volumes)
    by_recorder: dict[str, list[StorageVolume]] = defaultdict(list)
    for v in volumes:
        by_recorder[v.recorder.code].append(v)

    cams: list[planner.Cam] = []
    rows: list[CameraRow] = []
    for c in cameras:
        e, rate = eff[c.pk], rates[c.pk]
        cams.append(
            planner.Cam(c.code, c.recorder.code, rate.bytes_per_day, e.floor_days, e.ceiling_days)
        )
        rows.append(
            CameraRow(
                c.code,
                c.name,
                c.recorder.code,
                rate.kbps,
                rate.source,
                e.floor_days,
                e.ceiling_days,
                0.0,
                True,
                oldest.get(c.pk),
            )
        )
    for i, (code, kbps) in enumerate(what_if.add, start=1):
        rate = Rate(kbps * 1000 / 8, "what-if")
        label = f"+{i}"
        cams.append(
            planner.Cam(label, code, rate.bytes_per_day, site.floor_days, site.ceiling_days)
        )
        rows.append(
            CameraRow(
                label,
                f"what-if camera, {kbps} kbit/s",
                code,
                rate.kbps,
                rate.source,
                site.floor_days,
                site.ceiling_days,
                0.0,
                True,
                None,
                what_if=True,
            )
        )

    bins: list[planner.Bin] = []
    declared_bins: list[planner.Bin] = []
    rec_rows: list[RecorderRow] = []
    for r in recorders:
        vols = by_recorder.get(r.code, [])
        declared = sum(v.capacity_bytes for v in vols)
        effective = declared if declared_only else sum(caps[v.pk].effective for v in vols)
        usable = int(effective * keep)
        bins.append(planner.Bin(r.code, usable))
        declared_bins.append(planner.Bin(r.code, declared * keep))
        volume_rows = [
            VolumeRow(
                v.label,
                v.path,
                v.capacity_bytes,
                caps[v.pk].effective,
                _fs_total(caps[v.pk].fs),
                caps[v.pk].note,
            )
            for v in vols
        ]
        for v in vols:
            if caps[v.pk].limited_by_fs and not declared_only:
                notes.append(
                    _("%(volume)s: %(note)s; planned with the real size")
                    % {"volume": f"{r.code}:{v.label}", "note": caps[v.pk].note}
                )
        used = sum(used_bytes(v) for v in vols)
        rec_rows.append(
            RecorderRow(
                r.code,
                r.name,
                0,
                declared,
                effective,
                usable,
                used,
                _held_bytes([v.pk for v in vols]) if vols else 0,
                0.0,
                0.0,
                0.0,
                0,
                True,
                None,
                (not declared_only) and effective < declared,
                volume_rows,
            )
        )
    if not bins:
        raise ValueError(_("no recorders are configured"))

    current = planner.evaluate(bins, cams, {c.code: c.recorder for c in cams})
    declared_eval = planner.evaluate(declared_bins, cams, {c.code: c.recorder for c in cams})
    proposal = planner.propose(bins, cams, tolerance_days=tolerance_days)
    by_code = {c.code: c for c in cams}
    for row in rows:
        cam = by_code[row.code]
        d = current.days[cam.recorder]
        row.projected_days = _days(cam.keeps(d) if current.holds_floor[cam.recorder] else d)
        row.holds_floor = current.holds_floor[cam.recorder]
        row.proposed_recorder = proposal.assignment[cam.code]
    for rec in rec_rows:
        members = [c for c in cams if c.recorder == rec.code]
        rec.cameras = len(members)
        rec.bytes_per_day = sum(c.bytes_per_day for c in members)
        rec.projected_days = _days(current.days[rec.code])
        rec.projected_days_declared = _days(declared_eval.days[rec.code])
        rec.floor_days = max((int(c.floor_days) for c in members), default=site.floor_days)
        rec.holds_floor = current.holds_floor[rec.code]
        rec.proposed_days = _days(proposal.evaluation.days[rec.code])
        rec.proposed_cameras = sum(1 for c in cams if proposal.assignment[c.code] == rec.code)
        if not rec.holds_floor and rec.bytes_per_day > 0:
            rec.breach_date = _breach_date(rec, members, oldest_by_code(rows), now)
    if not all(r.holds_floor for r in rec_rows if r.cameras):
        failing = [r.code for r in rec_rows if r.cameras and not r.holds_floor]
        notes.append(_("cannot hold the floor: %(recorders)s") % {"recorders": ", ".join(failing)})
    if proposal.evaluation.minimum < site.floor_days:
        notes.append(
            _(
                "no assignment of these cameras holds the floor on every recorder: lower "
                "bitrates or add storage (needed: %(tb).1f TB more, or an average of "
                "%(kbps).0f kbit/s per camera)"
            )
            % {
                "tb": _needed_tb(cams, bins, keep),
                "kbps": _max_average_kbps(cams, bins, site.floor_days),
            }
        )
    return Plan(
        generated_at=now,
        reserve_percent=reserve,
        floor_days=site.floor_days,
        recorders=rec_rows,
        cameras=rows,
        upper_bound_days=_days(proposal.upper_bound),
        proposed_minimum_days=_days(proposal.evaluation.minimum),
        current_minimum_days=_days(current.minimum),
        moves=[{"camera": c, "from": a, "to": b} for c, a, b in proposal.moves],
        algorithm=proposal.algorithm,
        notes=notes,
        what_if={"add": [f"{r}:{k}" for r, k in what_if.add], "remove": what_if.remove},
        capacity_basis="declared" if declared_only else "effective",
    )


def oldest_by_code(rows: list[CameraRow]) -> dict[str, datetime | None]:
    return {r.code: r.oldest_footage for r in rows}


def _breach_date(
    rec: RecorderRow,
    members: list[planner.Cam],
    oldest: dict[str, datetime | None],
    now: datetime,
) -> datetime:
    """When footage still under the floor fills the usable space at today's rates.

    Space left = usable - used + what the sweep may still delete (footage already older
    than its floor, estimated per camera from its oldest footage, less held footage).
    """
    deletable = 0.0
    for c in members:
        first = oldest.get(c.code)
        if first is None:
            continue
        age_days = (now - first).total_seconds() / planner.SECONDS_PER_DAY
        deletable += c.bytes_per_day * max(0.0, age_days - c.floor_days)
    deletable = max(0.0, deletable - rec.held_bytes)
    room = rec.usable_bytes - rec.used_bytes + deletable
    return now + timedelta(days=max(0.0, room / rec.bytes_per_day))


def _needed_tb(cams: Sequence[planner.Cam], bins: Sequence[planner.Bin], keep: float) -> float:
    """Raw capacity to add (before the reserve) for the floor to fit at all."""
    need = planner.floor_bytes(cams) - sum(b.usable_bytes for b in bins)
    return max(0.0, need / max(keep, 0.01) / 1e12)


def _max_average_kbps(
    cams: Sequence[planner.Cam], bins: Sequence[planner.Bin], floor_days: float
) -> float:
    usable = sum(b.usable_bytes for b in bins)
    return usable / (len(cams) * floor_days * planner.SECONDS_PER_DAY) * 8 / 1000 if cams else 0.0
