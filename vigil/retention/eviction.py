"""The retention sweep of one volume.

Order of business on each sweep:

1. Ceiling: footage older than its camera's ceiling and not held is deleted, at most
   ``max_ceiling_deletions_per_sweep`` segments, and never while the clock is suspect.
2. Space: while free space (the smaller of the filesystem's free space and declared
   capacity minus catalogued footage) is under the target — the larger of the reserve
   (``reserve_percent`` of capacity) and ``min_free_minutes`` of recording at the volume's
   write rate — the oldest footage that is older than its camera's floor and not held is
   deleted, in batches of ``batch_segments`` (one short transaction each), at most
   ``max_deletions_per_sweep`` segments per sweep.
3. Floor at risk: if space is still short and nothing deletable is left, nothing more is
   deleted. A critical alert goes to the security head, IT staff, board and principal;
   once free space falls under ``stop_free_minutes`` of recording, recording on the
   volume pauses (``recording_allowed`` says False) until space comes back
   (docs/decisions/0010-when-the-floor-cannot-hold.md).

Ages are measured against a reference time, not the wall clock alone (``reference_time``):
the reference is never later than the newest footage on the volume, and it advances at
most ``CATCH_UP`` times faster than footage is being recorded, so a system clock that jumps
a year forward neither ages the archive by a year nor, once the recorder writes footage
stamped a year ahead, lets the sweep purge it: it catches up slowly and raises an alert.

Every deletion goes through ``recording.storage.delete_segments`` (intent, unlink, fsync,
audited). Sweeps of one volume never overlap (a lock file per volume).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max, Q, QuerySet, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.recording.models import Segment
from vigil.recording.storage import VolumeMismatch, delete_segments, ensure_marker
from vigil.retention import policy
from vigil.retention.models import Hold, VolumeState
from vigil.retention.volumes import (
    FreeSpace,
    VolumeCapacity,
    capacity,
    forget_deleted,
    free_space,
    newest_footage_end,
    state_of,
    used_bytes,
)
from vigil.school.models import Camera, StorageVolume

log = logging.getLogger(__name__)

FLOOR_ALERT = "storage_floor_at_risk"
CLOCK_ALERT = "retention_clock_suspect"
FLOOR_AUDIENCE = ("security_head", "it_staff", "board", "principal")
# The reference time may gain at most this many seconds per second of footage recorded:
# after a recorder outage it catches up within hours; after a clock jumped by a year it
# would need more than two weeks, and an alert says so meanwhile.
CATCH_UP = 24
# Alert only when the reference is held back this far: after an outage of a few days it
# simply catches up (a day per hour of recording); more than a week behind means the clock
# (or the footage's timestamps) is wrong.
CLOCK_ALERT_AFTER = timedelta(days=7)
REASON_SPACE = "retention.space"
REASON_CEILING = "retention.ceiling"


@dataclass
class SweepResult:
    volume: str
    now: datetime
    reference: datetime | None = None
    clock_suspect: bool = False
    capacity_bytes: int = 0
    free_before: int = 0
    free_after: int = 0
    target_free: int = 0
    stop_free: int = 0
    write_rate_bps: float = 0.0
    deleted_segments: int = 0
    deleted_bytes: int = 0
    ceiling_segments: int = 0
    ceiling_bytes: int = 0
    batches: int = 0
    floor_at_risk: bool = False
    recording_paused: bool = False
    capped: bool = False  # stopped at the per-sweep limit, more next time
    dry_run: bool = False
    skipped: str = ""
    seconds: float = 0.0
    oldest_kept: datetime | None = None
    protected_head: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data

    def summary(self) -> str:
        if self.skipped:
            return f"{self.volume}: skipped ({self.skipped})"
        parts = [
            f"{self.volume}: free {_gb(self.free_before)} → {_gb(self.free_after)} "
            f"(target {_gb(self.target_free)})",
            f"deleted {self.deleted_segments} segment(s) for space ({_gb(self.deleted_bytes)})",
            f"{self.ceiling_segments} past the ceiling ({_gb(self.ceiling_bytes)})",
        ]
        if self.floor_at_risk:
            parts.append("FLOOR AT RISK: only floor or held footage left")
        if self.recording_paused:
            parts.append("RECORDING PAUSED")
        if self.clock_suspect:
            parts.append("clock suspect: reference held back")
        if self.capped:
            parts.append("per-sweep limit reached")
        if self.dry_run:
            parts.append("dry run: nothing deleted")
        return "; ".join(parts)


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.2f} GB"


# ------------------------------------------------------------------------- locking


@contextmanager
def volume_lock(volume: StorageVolume) -> Iterator[bool]:
    """An exclusive, non-blocking lock per volume, across processes on this machine."""
    path = settings.PATHS.run / f"retention-{volume.uuid}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ------------------------------------------------------------------- reference time


@dataclass(frozen=True)
class Reference:
    time: datetime
    suspect: bool
    anchor_time: datetime
    anchor_id: int


def recorded_since(volume: StorageVolume, segment_id: int) -> float:
    """Seconds of footage recorded on the volume since a segment id: the most any one
    camera recorded, which is the real time elapsed for a camera recording throughout."""
    rows = (
        Segment.objects.filter(volume=volume, id__gt=segment_id)
        .values("camera_id")
        .annotate(d=Sum("duration"))
    )
    return max((float(r["d"] or 0) for r in rows), default=0.0)


def reference_time(volume: StorageVolume, state: VolumeState, now: datetime) -> Reference:
    """The time against which footage ages are measured on this volume (see module doc)."""
    newest = newest_footage_end(volume)
    newest_id = Segment.objects.aggregate(m=Max("id"))["m"] or 0
    observed = min(now, newest) if newest is not None else now
    if state.anchor_reference is None or state.anchor_segment_id is None:
        return Reference(observed, False, observed, newest_id)
    advance = recorded_since(volume, state.anchor_segment_id)
    slack = timedelta(minutes=settings.VIGIL.retention.clock_slack_minutes)
    allowed = state.anchor_reference + timedelta(seconds=advance * CATCH_UP)
    if observed <= allowed + slack:
        return Reference(observed, False, observed, newest_id)
    # The clock (or the newest footage) ran ahead of what was recorded: hold back.
    return Reference(allowed + slack, True, allowed, newest_id)


# ------------------------------------------------------------------ what may go


def _held_q(at: datetime | None = None) -> Q | None:
    """Segments under an active hold."""
    terms = Q()
    found = False
    for hold in Hold.objects.active().prefetch_related("cameras"):
        ids = [c.pk for c in hold.cameras.all()]
        if ids:
            terms |= Q(camera_id__in=ids, start__lt=hold.end, end__gt=hold.start)
            found = True
    return terms if found else None


def _age_q(reference: datetime, *, ceiling: bool) -> tuple[Q | None, datetime | None]:
    """Segments past their camera's floor (or ceiling), and the latest cutoff (for the
    index range). None when no camera has such a limit."""
    camera_ids = list(Camera.objects.values_list("pk", flat=True))
    eff = policy.effective_for(camera_ids)
    groups: dict[int, list[int]] = {}
    for cid, e in eff.items():
        days = e.ceiling_days if ceiling else e.floor_days
        if days is None:
            continue
        groups.setdefault(int(days), []).append(cid)
    if not groups:
        return None, None
    # The most common value becomes the default group (cameras listed by exclusion), so
    # the usual query has one short term whatever the number of cameras.
    default_days = max(groups, key=lambda d: len(groups[d]))
    special = [cid for d, ids in groups.items() if d != default_days for cid in ids]
    no_limit = [cid for cid, e in eff.items() if (e.ceiling_days if ceiling else 1) is None]
    q = Q(end__lte=reference - timedelta(days=default_days)) & ~Q(camera_id__in=special + no_limit)
    for days, ids in groups.items():
        if days != default_days:
            q |= Q(camera_id__in=ids, end__lte=reference - timedelta(days=days))
    latest = reference - timedelta(days=min(groups))
    return q, latest


def candidates(volume: StorageVolume, reference: datetime, *, ceiling: bool) -> QuerySet[Segment]:
    """Deletable segments on the volume, oldest first."""
    age_q, latest = _age_q(reference, ceiling=ceiling)
    if age_q is None or latest is None:
        return Segment.objects.none()
    qs = Segment.objects.filter(volume=volume, start__lt=latest).filter(age_q)
    held = _held_q()
    if held is not None:
        qs = qs.exclude(held)
    return qs.select_related("volume").order_by("start", "id")


# ------------------------------------------------------------------------ the sweep


def write_rate(volume: StorageVolume) -> float:
    """Bytes per second written to the volume: its last hour of footage (ending at the
    newest segment, whatever the clock says); the cameras' specified bitrates when the
    volume holds no footage."""
    hour = timedelta(hours=1)
    newest = newest_footage_end(volume)
    if newest is not None:
        written = (
            Segment.objects.filter(
                volume=volume, start__gte=newest - hour, start__lt=newest
            ).aggregate(s=Sum("size_bytes"))["s"]
            or 0
        )
        if written:
            return float(written) / hour.total_seconds()
    cameras = Camera.objects.filter(recorder_id=volume.recorder_id).exclude(
        state=Camera.State.DECOMMISSIONED
    )
    share = max(1, StorageVolume.objects.filter(recorder_id=volume.recorder_id).count())
    return sum(c.bitrate_kbps * 1000 / 8 for c in cameras) / share


def targets(cap: VolumeCapacity, rate: float) -> tuple[int, int]:
    cfg = settings.VIGIL.retention
    target = max(cap.own_size * cfg.reserve_percent / 100.0, cfg.min_free_minutes * 60 * rate)
    stop = max(1.0, cfg.stop_free_minutes * 60 * rate)
    return int(target), int(min(stop, target))


def _delete_batches(
    volume: StorageVolume,
    qs: QuerySet[Segment],
    *,
    limit: int,
    reason: str,
    actor: Actor,
    detail: dict[str, Any],
    dry_run: bool,
    enough: Any,
    result: SweepResult,
) -> tuple[int, int, bool]:
    """Delete oldest-first in batches until ``enough()`` or the limit; returns (segments,
    bytes, exhausted)."""
    batch_size = settings.VIGIL.retention.batch_segments
    count = size = 0
    last: tuple[datetime, int] | None = None
    while count < limit and not enough(size):
        page = qs
        if dry_run and last is not None:
            page = qs.filter(Q(start__gt=last[0]) | Q(start=last[0], id__gt=last[1]))
        batch = list(page[: min(batch_size, limit - count)])
        if not batch:
            return count, size, True
        batch_bytes = sum(s.size_bytes for s in batch)
        if not dry_run:
            delete_segments(batch, reason=reason, actor=actor, detail=detail)
            forget_deleted(volume, [(s.pk, s.size_bytes) for s in batch])
        else:
            last = (batch[-1].start, batch[-1].pk)
        count += len(batch)
        size += batch_bytes
        result.batches += 1
    return count, size, False


def sweep(
    volume: StorageVolume,
    now: datetime | None = None,
    *,
    actor: Actor | None = None,
    dry_run: bool = False,
) -> SweepResult:
    started = time.monotonic()
    now = now or timezone.now()
    actor = actor or Actor.system("retention")
    result = SweepResult(volume=str(volume), now=now, dry_run=dry_run)
    with volume_lock(volume) as locked:
        if not locked:
            result.skipped = "another sweep of this volume is running"
            return result
        refusal = _refusal(volume)
        if refusal:
            result.skipped = refusal
            log.error("retention sweep refused on %s: %s", volume, refusal)
            return result
        _sweep_locked(volume, now, actor, dry_run, result)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _refusal(volume: StorageVolume) -> str:
    """Why this volume must not be swept from here, or "" when it may.

    A volume is swept only where it is mounted, and only if its marker matches this
    database. An empty directory with no marker is adopted only while the catalog lists no
    footage on it: otherwise it is a disk that failed to mount (an empty mount point) or a
    wrong path, and deleting would drop the rows of footage that still exists elsewhere.
    """
    if not Path(volume.path).is_dir():
        return "not mounted on this machine"
    try:
        ensure_marker(volume)  # refuses a missing marker where the catalog lists footage
    except VolumeMismatch as exc:
        return str(exc)
    return ""


def _sweep_locked(
    volume: StorageVolume, now: datetime, actor: Actor, dry_run: bool, result: SweepResult
) -> None:
    cfg = settings.VIGIL.retention
    state = state_of(volume)
    cap = capacity(volume)
    ref = reference_time(volume, state, now)
    result.reference, result.clock_suspect = ref.time, ref.suspect
    result.capacity_bytes = cap.own_size
    rate = write_rate(volume)
    target, stop = targets(cap, rate)
    result.write_rate_bps, result.target_free, result.stop_free = rate, target, stop
    free = free_space(cap)
    if free.declared < target and (free.real is None or free.declared < free.real):
        # The declared capacity is what is short: count the catalogue exactly before
        # deleting anything on the strength of a cached figure.
        free = free_space(cap, used_bytes(volume, max_age=timedelta(0)))
    result.free_before = free.free
    detail = {
        "volume": str(volume),
        "reference": ref.time.isoformat(),
        "target_free": target,
        "free": free.free,
    }

    # 1. Past the ceiling.
    if not ref.suspect:
        n, b, _exhausted = _delete_batches(
            volume,
            candidates(volume, ref.time, ceiling=True),
            limit=cfg.max_ceiling_deletions_per_sweep,
            reason=REASON_CEILING,
            actor=actor,
            detail=detail,
            dry_run=dry_run,
            enough=lambda _size: False,
            result=result,
        )
        result.ceiling_segments, result.ceiling_bytes = n, b
        result.capped = n >= cfg.max_ceiling_deletions_per_sweep
        if b and not dry_run:
            free = free_space(cap)

    # 2. Space.
    exhausted = False
    if free.free < target:
        start_free = free

        def enough(size: int) -> bool:
            if dry_run:
                return start_free.free + size >= target
            return _free_now(cap, start_free, size) >= target

        n, b, exhausted = _delete_batches(
            volume,
            candidates(volume, ref.time, ceiling=False),
            limit=cfg.max_deletions_per_sweep,
            reason=REASON_SPACE,
            actor=actor,
            detail=detail,
            dry_run=dry_run,
            enough=enough,
            result=result,
        )
        result.deleted_segments, result.deleted_bytes = n, b
        result.capped = result.capped or (n >= cfg.max_deletions_per_sweep and not exhausted)
        free = free_space(cap) if not dry_run else start_free
        result.free_after = free.free + (b if dry_run else 0)
    else:
        result.free_after = free.free

    # 3. Floor at risk: space short and nothing left that may go.
    result.floor_at_risk = result.free_after < target and exhausted
    if not dry_run:
        _record_state(volume, state, ref, result, actor)


def _free_now(cap: VolumeCapacity, before: FreeSpace, deleted: int) -> int:
    """Free space after deleting ``deleted`` bytes: the filesystem is asked again; the
    declared side is the count before minus what went."""
    real = free_space(cap, before.used - deleted).real
    declared = before.declared + deleted
    return declared if real is None else min(real, declared)


def _record_state(
    volume: StorageVolume, state: VolumeState, ref: Reference, result: SweepResult, actor: Actor
) -> None:
    from vigil.alerts.services import clear_alert, raise_alert

    now = result.now
    updates: dict[str, Any] = {
        "anchor_reference": ref.anchor_time,
        "anchor_segment_id": ref.anchor_id,
        "last_sweep_at": now,
    }
    paused = state.recording_paused
    if result.floor_at_risk:
        message_args = {
            "volume": str(volume),
            "free": _gb(result.free_after),
            "target": _gb(result.target_free),
        }
        with translation.override(settings.LANGUAGE_CODE):
            title = _("Storage cannot hold the retention floor on %(volume)s") % message_args
            message = (
                _(
                    "Free space is %(free)s, below the %(target)s to keep free, and only "
                    "footage under the retention floor or an evidence hold is left. Vigil "
                    "does not delete it: recording on this volume pauses when free space runs "
                    "out. Add storage, lower camera bitrates, move cameras (see the storage "
                    "plan) or release holds that are no longer needed."
                )
                % message_args
            )
        raise_alert(
            cause=FLOOR_ALERT,
            severity="critical",
            title=title,
            message=message,
            recorder=volume.recorder,
            audience=FLOOR_AUDIENCE,
            detail=result.to_dict(),
            actor=actor,
        )
        if result.free_after < result.stop_free and not paused:
            paused = True
            updates.update(
                recording_paused=True,
                paused_at=now,
                paused_reason="only floor or held footage left and free space ran out",
            )
            record(
                actor,
                "retention.recording_paused",
                volume,
                detail={"free": result.free_after, "stop_free": result.stop_free},
            )
    if paused and not (result.floor_at_risk and result.free_after < 2 * result.stop_free):
        paused = False
        updates.update(recording_paused=False, paused_at=None, paused_reason="")
        record(actor, "retention.recording_resumed", volume, detail={"free": result.free_after})
    result.recording_paused = paused
    siblings_at_risk = any(
        s.last_sweep.get("floor_at_risk")
        for s in VolumeState.objects.filter(volume__recorder_id=volume.recorder_id).exclude(
            volume=volume
        )
    )
    if (
        not result.floor_at_risk
        and result.free_after >= result.target_free
        and not siblings_at_risk
    ):
        clear_alert(cause=FLOOR_ALERT, recorder=volume.recorder, note="free space restored")
    held_back = min(result.now, newest_footage_end(volume) or result.now) - ref.time
    if ref.suspect and held_back > CLOCK_ALERT_AFTER:
        with translation.override(settings.LANGUAGE_CODE):
            title = _("The clock runs ahead of the recorded footage on %(volume)s") % {
                "volume": str(volume)
            }
        raise_alert(
            cause=CLOCK_ALERT,
            severity="warning",
            title=title,
            message=(
                f"now={result.now.isoformat()} reference={ref.time.isoformat()}: retention "
                "ages footage by the recorded time only; check the system clock (NTP)."
            ),
            recorder=volume.recorder,
            audience=("it_staff", "security_head"),
            detail={"now": result.now.isoformat(), "reference": ref.time.isoformat()},
            actor=actor,
        )
    elif not ref.suspect:
        clear_alert(cause=CLOCK_ALERT, recorder=volume.recorder, note="clock agrees again")
    updates["last_sweep_json"] = json.dumps(result.to_dict(), default=str)
    VolumeState.objects.filter(pk=state.pk).update(**updates)


def recording_allowed(volume: StorageVolume) -> bool:
    """May the recorder write new footage on this volume? False only while the sweep has
    paused it (only floor or held footage left and no free space)."""
    paused = (
        VolumeState.objects.filter(volume=volume).values_list("recording_paused", flat=True).first()
    )
    return not paused
