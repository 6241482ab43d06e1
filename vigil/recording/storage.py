"""Footage on disk: volume markers and the crash-safe deletion protocol.

Deletion (Moonfire's "garbage" protocol): in one transaction the segment rows are removed
and a ``DeletionIntent`` is recorded for each file, with one audit entry; only after that
commits are the files unlinked and their directories fsynced; then the intents are
removed. A crash anywhere leaves either the rows (nothing happened) or intents (finished by
``finish_pending_deletions`` at start-up) — never a row without its file, and never an
unlinked file that no committed decision said could go.

Each volume holds a marker file naming the installation and the volume. Before Vigil
writes or deletes anything on a volume it checks the marker, so an empty or swapped
database, or a disk mounted in the wrong place, never leads to footage being deleted.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.recording.models import DeletionIntent, Segment
from vigil.school.models import School, StorageVolume

log = logging.getLogger(__name__)

MARKER_NAME = ".vigil-volume.json"


class VolumeMismatch(RuntimeError):
    """The volume on disk does not belong to this database; nothing may be deleted."""


def volume_root(volume: StorageVolume) -> Path:
    return Path(volume.path)


def _installation_id() -> str:
    school = School.objects.only("installation_id").first()
    if school is None:
        raise VolumeMismatch("the database has no school: run 'vigil init' first")
    return str(school.installation_id)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_marker(volume: StorageVolume) -> dict[str, str] | None:
    path = volume_root(volume) / MARKER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise VolumeMismatch(f"{path}: unreadable volume marker ({exc})") from exc
    if not isinstance(data, dict):
        raise VolumeMismatch(f"{path}: unreadable volume marker")
    return {str(k): str(v) for k, v in data.items()}


def ensure_marker(volume: StorageVolume) -> None:
    """Write the marker on a fresh, empty volume; verify it on every later use."""
    root = volume_root(volume)
    expected = {"installation": _installation_id(), "volume": str(volume.uuid)}
    marker = read_marker(volume)
    if marker is None:
        root.mkdir(parents=True, exist_ok=True)
        existing = [p for p in root.iterdir() if p.name != MARKER_NAME]
        from vigil.recording.models import Segment as _Segment

        if _Segment.objects.filter(volume=volume).exists():
            raise VolumeMismatch(
                f"{root} has no Vigil volume marker but the catalog holds footage there: the "
                "disk is probably not mounted. Mount it (or restore its marker) first."
            )
        if existing:
            raise VolumeMismatch(
                f"{root} holds files but no Vigil volume marker: it may belong to another "
                "installation. Move its contents away or restore the matching database."
            )
        tmp = root / (MARKER_NAME + ".tmp")
        tmp.write_text(json.dumps({**expected, "label": volume.label}), encoding="utf-8")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.rename(root / MARKER_NAME)
        fsync_dir(root)
        return
    if marker.get("installation") != expected["installation"]:
        raise VolumeMismatch(
            f"{root} belongs to installation {marker.get('installation')}, not this database's "
            f"{expected['installation']}: refusing to write or delete footage there"
        )
    if marker.get("volume") != expected["volume"]:
        raise VolumeMismatch(
            f"{root} is volume {marker.get('volume')}, but the database expects "
            f"{expected['volume']} here (disks swapped?): refusing to write or delete footage"
        )


@dataclass
class DeleteResult:
    segments: int = 0
    bytes: int = 0
    missing_files: int = 0


def _unlink_intents(intents: list[DeletionIntent], result: DeleteResult) -> None:
    dirs: set[Path] = set()
    by_volume: dict[int, StorageVolume] = {}
    for intent in intents:
        volume = by_volume.get(intent.volume_id)
        if volume is None:
            volume = by_volume[intent.volume_id] = intent.volume
        path = volume_root(volume) / intent.path
        try:
            path.unlink()
        except FileNotFoundError:
            result.missing_files += 1
        dirs.add(path.parent)
    for d in dirs:
        try:
            fsync_dir(d)
        except FileNotFoundError:
            continue
    DeletionIntent.objects.filter(pk__in=[i.pk for i in intents]).delete()


def delete_segments(
    segments: Iterable[Segment],
    *,
    reason: str,
    actor: Actor,
    detail: dict[str, object] | None = None,
) -> DeleteResult:
    """Delete segments and their files with the intent protocol, auditing the batch."""
    result = DeleteResult()
    rows = list(segments)
    if not rows:
        return result
    for volume in {s.volume for s in rows}:
        ensure_marker(volume)
    with transaction.atomic():
        # Another sweeper may have deleted some of these since they were chosen: act only
        # on the rows still present, locked for this transaction.
        rows = list(
            Segment.objects.select_for_update()
            .select_related("volume__recorder")
            .filter(pk__in=[s.pk for s in rows])
        )
        if not rows:
            return result
        per_camera: dict[int, list[Segment]] = defaultdict(list)
        for s in rows:
            per_camera[s.camera_id].append(s)
        intents = DeletionIntent.objects.bulk_create(
            [
                DeletionIntent(volume_id=s.volume_id, path=s.path, segment_id=s.pk, reason=reason)
                for s in rows
            ]
        )
        Segment.objects.filter(pk__in=[s.pk for s in rows]).delete()
        record(
            actor,
            "footage.delete",
            ("recording.segment", "", f"{len(rows)} segment(s)"),
            detail={
                "reason": reason,
                "volume": ", ".join(
                    sorted({f"{s.volume.recorder.code}:{s.volume.label}" for s in rows})
                ),
                "segments": len(rows),
                "bytes": sum(s.size_bytes for s in rows),
                "cameras": {
                    str(cam): [
                        min(s.start for s in segs).isoformat(),
                        max(s.end for s in segs).isoformat(),
                    ]
                    for cam, segs in per_camera.items()
                },
                **(detail or {}),
            },
        )
    result.segments = len(rows)
    result.bytes = sum(s.size_bytes for s in rows)
    # Re-read with ids (bulk_create sets pk on SQLite >= 3.35 and PostgreSQL).
    _unlink_intents(
        list(
            DeletionIntent.objects.filter(pk__in=[i.pk for i in intents]).select_related("volume")
        ),
        result,
    )
    return result


def finish_pending_deletions() -> DeleteResult:
    """Finish deletions a crash interrupted (run at start-up and by `vigil check`)."""
    result = DeleteResult()
    intents = list(DeletionIntent.objects.select_related("volume").order_by("pk"))
    if intents:
        log.info("finishing %d interrupted deletion(s)", len(intents))
        _unlink_intents(intents, result)
    return result
