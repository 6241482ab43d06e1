"""Proving that catalog rows and files on disk agree, and repairing what a crash left.

``check_volume`` compares every segment row of a volume with its file (exists, size, and
with ``verify_hash`` the SHA-256 computed at ingest) and lists files no row knows about.
With ``repair``:

* interrupted deletions (intents) are finished — those files were already decided on;
* a file without a row is adopted: the media engine recovers it (a torn tail from a
  crash is trimmed to the last complete fragment) and a row is added, flagged
  ``recovered``; a file with nothing decodable is moved to ``.quarantine/``, never deleted;
* a row whose file is gone is removed and the hole is recorded as a gap
  (``storage_unavailable``) so the coverage report shows the loss;
* a size or hash mismatch is reported and left alone: the file may be evidence of
  tampering or disk failure, and no repair may hide that.

Nothing here deletes footage that no row said could go.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import transaction

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.media.segment import parse_segment_path, recover
from vigil.recording.catalog import add_segment
from vigil.recording.models import Gap, Segment
from vigil.recording.storage import (
    MARKER_NAME,
    VolumeMismatch,
    ensure_marker,
    finish_pending_deletions,
)
from vigil.school.models import Camera, StorageVolume

log = logging.getLogger("vigil.recording.check")
QUARANTINE = ".quarantine"


@dataclass
class Problem:
    kind: str  # missing_file, size_mismatch, hash_mismatch, orphan_file, unknown_camera
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class CheckReport:
    volume: str
    rows: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    pending_intents: int = 0
    adopted: int = 0
    quarantined: int = 0
    rows_removed: int = 0

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if p.kind not in ("repaired",)]

    @property
    def clean(self) -> bool:
        return not self.unresolved

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for p in self.unresolved:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        parts = [f"{self.rows} rows, {self.files} files"]
        parts += [f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items())]
        if self.pending_intents:
            parts.append(f"{self.pending_intents} interrupted deletions finished")
        if self.adopted:
            parts.append(f"{self.adopted} files adopted")
        if self.quarantined:
            parts.append(f"{self.quarantined} unreadable files quarantined")
        if self.rows_removed:
            parts.append(f"{self.rows_removed} rows without file removed (gaps recorded)")
        return ", ".join(parts)


def _segment_files(root: Path, days: set[str] | None = None) -> Iterator[Path]:
    """Segment files under a volume: <camera>/<YYYY-MM-DD>/<HHMMSS>-<seq>.mp4."""
    try:
        cameras = list(os.scandir(root))
    except FileNotFoundError:
        return
    for cam in cameras:
        if not cam.is_dir() or cam.name.startswith("."):
            continue
        for day in os.scandir(cam.path):
            if not day.is_dir() or (days is not None and day.name not in days):
                continue
            for entry in os.scandir(day.path):
                if entry.is_file() and entry.name.endswith(".mp4"):
                    yield Path(entry.path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _quarantine(root: Path, path: Path) -> None:
    target = root / QUARANTINE / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    path.rename(target)


def reconcile_volume(
    volume: StorageVolume,
    *,
    actor: Actor,
    repair: bool = True,
    verify_hash: bool = False,
    startup: bool = False,
) -> CheckReport:
    """Compare a volume with its rows (see module docstring).

    ``startup`` limits the file scan to today's and yesterday's directories (UTC): where
    a crash can have left a segment in progress. ``vigil check`` scans everything.
    """
    root = Path(volume.path)
    report = CheckReport(volume=f"{volume.recorder.code}:{volume.label} ({root})")
    ensure_marker(volume)
    if repair:
        report.pending_intents = finish_pending_deletions().segments or 0
    days: set[str] | None = None
    rows_qs = Segment.objects.filter(volume=volume)
    if startup:
        today = datetime.now(UTC).date()
        days = {today.isoformat(), (today - timedelta(days=1)).isoformat()}
        rows_qs = rows_qs.filter(start__gte=datetime.now(UTC) - timedelta(days=2, hours=1))
    known: dict[str, tuple[int, int, str, int]] = {}
    for pk, rel_path, size, sha, cam in rows_qs.values_list(
        "pk", "path", "size_bytes", "sha256", "camera_id"
    ).iterator(chunk_size=5000):
        known[rel_path] = (pk, size, sha, cam)
    report.rows = len(known)

    missing: list[int] = []
    if not startup:
        for rel, (pk, size, sha, _cam) in known.items():
            file = root / rel
            try:
                actual = file.stat().st_size
            except FileNotFoundError:
                report.problems.append(Problem("missing_file", rel))
                missing.append(pk)
                continue
            if actual != size:
                report.problems.append(
                    Problem("size_mismatch", rel, f"catalog {size} bytes, file {actual} bytes")
                )
            elif verify_hash and _sha256(file) != sha:
                report.problems.append(Problem("hash_mismatch", rel, "SHA-256 differs from ingest"))

    orphans: list[Path] = []
    for path in _segment_files(root, days):
        report.files += 1
        rel = str(path.relative_to(root))
        if rel not in known:
            orphans.append(path)
    cameras = {c.code: c for c in Camera.objects.all()}
    for path in sorted(orphans):
        rel = str(path.relative_to(root))
        try:
            name = parse_segment_path(path)
        except ValueError:
            report.problems.append(Problem("orphan_file", rel, "not a Vigil segment name"))
            continue
        camera = cameras.get(name.camera_code)
        if camera is None:
            report.problems.append(Problem("unknown_camera", rel, name.camera_code))
            continue
        if not repair:
            report.problems.append(Problem("orphan_file", rel))
            continue
        recovered = recover(path)
        if recovered is None:
            _quarantine(root, path)
            report.quarantined += 1
            log.warning("quarantined unreadable segment %s", rel)
            continue
        with transaction.atomic():
            add_segment(camera, volume, recovered)
            record(
                actor,
                "footage.adopt",
                camera,
                detail={"path": rel, "bytes": recovered.size, "duration": recovered.duration},
            )
        report.adopted += 1

    if repair and missing:
        with transaction.atomic():
            rows = list(Segment.objects.filter(pk__in=missing).select_related("camera"))
            for seg in rows:
                Gap.objects.create(
                    camera=seg.camera,
                    start=seg.start,
                    end=seg.end,
                    cause=Gap.Cause.STORAGE,
                    detail=f"segment file missing: {seg.path}",
                )
            Segment.objects.filter(pk__in=missing).delete()
            record(
                actor,
                "footage.missing",
                ("recording.volume", str(volume.pk), report.volume),
                detail={"rows": len(rows), "paths": [s.path for s in rows[:50]]},
            )
        report.rows_removed = len(missing)
        report.problems = [p for p in report.problems if p.kind != "missing_file"]
    return report


def check_all(
    *, actor: Actor, repair: bool, verify_hash: bool, recorder: str | None = None
) -> list[CheckReport]:
    volumes = StorageVolume.objects.select_related("recorder").order_by("recorder__code", "label")
    if recorder:
        volumes = volumes.filter(recorder__code=recorder)
    reports = []
    for volume in volumes:
        if not Path(volume.path).exists():
            report = CheckReport(volume=f"{volume.recorder.code}:{volume.label} ({volume.path})")
            if Segment.objects.filter(volume=volume).exists():
                report.problems.append(Problem("volume_missing", volume.path, "not mounted?"))
            reports.append(report)
            continue
        try:
            reports.append(
                reconcile_volume(volume, actor=actor, repair=repair, verify_hash=verify_hash)
            )
        except VolumeMismatch as exc:
            report = CheckReport(volume=f"{volume.recorder.code}:{volume.label} ({volume.path})")
            report.problems.append(Problem("volume_mismatch", volume.path, str(exc)))
            reports.append(report)
    return reports


__all__ = ["MARKER_NAME", "CheckReport", "Problem", "check_all", "reconcile_volume"]
