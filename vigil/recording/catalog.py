"""Catalog writes for what the media engine reports: finished segments and gaps.

``add_segment`` is called only after the engine has fsynced the file and its directory
(``FinishedSegment`` is built by ``SegmentFile.finish``), so a row always points to a
durable file. Reads for timelines live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from vigil.media.ingest import Gap as EngineGap
from vigil.media.segment import FinishedSegment
from vigil.recording.models import Gap, Segment
from vigil.school.models import Camera, StorageVolume

# Engine gap causes -> catalog causes.
GAP_CAUSES = {
    "camera_unreachable": Gap.Cause.CAMERA_UNREACHABLE,
    "stream_stalled": Gap.Cause.STREAM_STALLED,
    "recorder_stopped": Gap.Cause.RECORDER_STOPPED,
    "authentication_failed": Gap.Cause.AUTHENTICATION,
    "stream_error": Gap.Cause.UNSUPPORTED,
    "storage_error": Gap.Cause.STORAGE,
}


def relative_path(volume: StorageVolume, path: Path | str) -> str:
    return str(Path(path).resolve().relative_to(Path(volume.path).resolve()))


def add_segment(camera: Camera, volume: StorageVolume, seg: FinishedSegment) -> Segment:
    """Insert the row for a durable segment file (idempotent on the file path)."""
    rel = relative_path(volume, seg.path)
    try:
        with transaction.atomic():
            return Segment.objects.create(
                camera=camera,
                volume=volume,
                path=rel,
                start=seg.start,
                end=seg.end,
                duration=seg.duration,
                size_bytes=seg.size,
                sha256=seg.sha256,
                codec=seg.codec,
                codec_string=seg.mime_codecs,
                width=seg.width,
                height=seg.height,
                fps=seg.fps,
                has_audio=seg.has_audio,
                init_size=seg.init_size,
                recovered=seg.recovered,
            )
    except IntegrityError:
        return Segment.objects.get(volume=volume, path=rel)


@dataclass
class GapTracker:
    """Upserts engine gaps (reported once open, once closed, same id) into Gap rows."""

    camera: Camera
    rows: dict[str, int]

    @classmethod
    def for_camera(cls, camera: Camera) -> GapTracker:
        return cls(camera, {})

    def apply(self, gap: EngineGap) -> Gap:
        cause = GAP_CAUSES.get(str(gap.cause), Gap.Cause.CAMERA_UNREACHABLE)
        start = datetime.fromtimestamp(gap.start_utc, tz=UTC)
        end = datetime.fromtimestamp(gap.end_utc, tz=UTC) if gap.end_utc is not None else None
        row_id = self.rows.get(gap.id)
        if row_id is not None:
            Gap.objects.filter(pk=row_id).update(end=end, cause=cause, detail=gap.detail[:500])
            row = Gap.objects.get(pk=row_id)
        else:
            row = Gap.objects.create(
                camera=self.camera, start=start, end=end, cause=cause, detail=gap.detail[:500]
            )
            self.rows[gap.id] = row.pk
        if end is not None:
            self.rows.pop(gap.id, None)
        return row


# Segments are cut every few seconds (``[recording] segment_seconds`` at most 600); a
# segment straddling a boundary started at most this long before it.
MAX_SEGMENT = timedelta(hours=1)


@dataclass
class Timeline:
    """A camera's footage between two instants: segments as (start, end) in seconds since
    the epoch (what a timeline bar draws; no per-row datetime objects, so a whole day of
    10-second segments loads fast), and the recorder's gaps with their causes."""

    segments: list[tuple[float, float]]
    gaps: list[tuple[datetime, datetime | None, str]]

    @property
    def recorded_seconds(self) -> float:
        return sum(e - s for s, e in self.segments)

    def spans(self, tolerance: float = 1.0) -> list[tuple[float, float]]:
        """Contiguous runs of footage (segments closer than ``tolerance`` seconds merged)."""
        out: list[tuple[float, float]] = []
        for s, e in self.segments:
            if out and s - out[-1][1] <= tolerance:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        return out


def _epoch(column: str) -> str:
    """SQL for a timestamp column as float seconds since the epoch."""
    if connection.vendor == "postgresql":
        return f'EXTRACT(EPOCH FROM "{column}")::float8'
    return f'(julianday("{column}") - 2440587.5) * 86400.0'


def camera_timeline(camera_id: int, start: datetime, end: datetime) -> Timeline:
    """Segments and gaps of one camera between two instants: one index range scan on
    (camera, start), plus the segment straddling ``start``."""
    table = Segment._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"SELECT {_epoch('start')}, {_epoch('end')} FROM {table} "  # noqa: S608 (fixed names)
        "WHERE camera_id = %s AND start >= %s AND start < %s ORDER BY start"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [camera_id, adapt(start), adapt(end)])
        inside = [(float(a), float(b)) for a, b in cur.fetchall()]
    before = (
        Segment.objects.filter(camera_id=camera_id, start__lt=start, start__gte=start - MAX_SEGMENT)
        .order_by("-start")
        .values_list("start", "end")
        .first()
    )
    segments = inside
    if before is not None and before[1] > start:
        segments = [(before[0].timestamp(), before[1].timestamp()), *inside]
    gaps = list(
        Gap.objects.filter(camera_id=camera_id, start__lt=end)
        .filter(Q(end__gt=start) | Q(end__isnull=True))
        .order_by("start")
        .values_list("start", "end", "cause")
    )
    return Timeline(segments, gaps)
