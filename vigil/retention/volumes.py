"""What a volume really offers: declared capacity against the real filesystem, free space,
and the bytes of footage catalogued on it.

* Capacity for planning (``effective``): the declared ``capacity_bytes`` unless the real
  filesystem is smaller (a demo on a laptop); volumes on one filesystem share it in
  proportion to their declared sizes.
* Capacity for the sweep (``own_size``): the declared size, or the whole filesystem if
  smaller. Free space: the smaller of the filesystem's free space (not a notional share:
  volumes on one disk compete for the same free blocks) and declared capacity minus the
  catalogued footage.
* Used bytes: kept in ``VolumeState`` and brought up to date incrementally (new segment
  ids only), recounted in full every few hours, so that pages and sweeps never sum
  millions of rows.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import F, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.recording.models import Segment
from vigil.retention.models import VolumeState
from vigil.school.models import StorageVolume

RECOUNT_EVERY = timedelta(hours=6)


@dataclass(frozen=True)
class FsInfo:
    device: int
    total: int
    free: int


def fs_info(path: str | Path) -> FsInfo | None:
    """The filesystem holding ``path``; None when the path does not exist here (a volume
    of a recorder on another machine)."""
    p = Path(path)
    if not p.exists():
        return None
    st = os.statvfs(p)
    return FsInfo(os.stat(p).st_dev, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


@dataclass
class VolumeCapacity:
    volume: StorageVolume
    declared: int
    effective: int
    fs: FsInfo | None
    shared_with: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def limited_by_fs(self) -> bool:
        return self.effective < self.declared

    @property
    def own_size(self) -> int:
        return self.declared if self.fs is None else min(self.declared, self.fs.total)


def capacities(volumes: Iterable[StorageVolume]) -> dict[int, VolumeCapacity]:
    """Effective capacity of each volume, with the reason when it is not the declared one."""
    vols = list(volumes)
    infos = {v.pk: fs_info(v.path) for v in vols}
    groups: dict[int, list[StorageVolume]] = defaultdict(list)
    for v in vols:
        info = infos[v.pk]
        if info is not None:
            groups[info.device].append(v)
    out: dict[int, VolumeCapacity] = {}
    for v in vols:
        info = infos[v.pk]
        if info is None:
            out[v.pk] = VolumeCapacity(
                v, v.capacity_bytes, v.capacity_bytes, None, note=_("not mounted on this machine")
            )
            continue
        group = groups[info.device]
        declared_sum = sum(g.capacity_bytes for g in group)
        others = [str(g) for g in group if g.pk != v.pk]
        share = info.total if len(group) == 1 else info.total * v.capacity_bytes // declared_sum
        effective = min(v.capacity_bytes, share)
        note = ""
        if effective < v.capacity_bytes:
            note = _("real filesystem smaller than declared")
            if others:
                note += " " + _("(shared with %(others)s)") % {"others": ", ".join(others)}
        cap = VolumeCapacity(v, v.capacity_bytes, effective, info, others if others else [], note)
        out[v.pk] = cap
    return out


def capacity(volume: StorageVolume) -> VolumeCapacity:
    siblings = StorageVolume.objects.select_related("recorder")
    return capacities(siblings)[volume.pk]


def state_of(volume: StorageVolume) -> VolumeState:
    state, _created = VolumeState.objects.get_or_create(volume=volume)
    return state


def used_bytes(volume: StorageVolume, *, max_age: timedelta = RECOUNT_EVERY) -> int:
    """Bytes of footage catalogued on the volume (cached, incremental, recounted)."""
    state = state_of(volume)
    now = timezone.now()
    newest_id = Segment.objects.aggregate(m=Max("id"))["m"] or 0
    if state.used_recounted_at is None or now - state.used_recounted_at > max_age:
        total = (
            Segment.objects.filter(volume=volume, id__lte=newest_id).aggregate(s=Sum("size_bytes"))[
                "s"
            ]
            or 0
        )
        VolumeState.objects.filter(pk=state.pk).update(
            used_bytes=total, used_counted_id=newest_id, used_recounted_at=now
        )
        return int(total)
    if newest_id > state.used_counted_id:
        added = (
            Segment.objects.filter(
                volume=volume, id__gt=state.used_counted_id, id__lte=newest_id
            ).aggregate(s=Sum("size_bytes"))["s"]
            or 0
        )
        # Only the process that still sees the old count applies the increment.
        updated = VolumeState.objects.filter(
            pk=state.pk, used_counted_id=state.used_counted_id
        ).update(used_bytes=F("used_bytes") + added, used_counted_id=newest_id)
        if updated:
            return int(state.used_bytes + added)
        state.refresh_from_db(fields=["used_bytes"])
    return int(state.used_bytes)


def forget_deleted(volume: StorageVolume, segments: Iterable[tuple[int, int]]) -> None:
    """Take deleted segments ((id, size) pairs) off the cached count."""
    state = state_of(volume)
    counted = sum(size for sid, size in segments if sid <= state.used_counted_id)
    if counted:
        VolumeState.objects.filter(pk=state.pk).update(used_bytes=F("used_bytes") - counted)


def newest_footage_end(volume: StorageVolume) -> datetime | None:
    row = Segment.objects.filter(volume=volume).order_by("-start").values("end").first()
    return row["end"] if row else None


@dataclass(frozen=True)
class FreeSpace:
    real: int | None  # the filesystem's free space (this volume's share), None if not here
    declared: int  # declared capacity minus catalogued footage
    used: int

    @property
    def free(self) -> int:
        return self.declared if self.real is None else min(self.real, self.declared)


def free_space(cap: VolumeCapacity, used: int | None = None) -> FreeSpace:
    used = used_bytes(cap.volume) if used is None else used
    real = None
    if cap.fs is not None:
        info = fs_info(cap.volume.path)
        if info is not None:
            real = info.free
    return FreeSpace(real, cap.declared - used, used)
