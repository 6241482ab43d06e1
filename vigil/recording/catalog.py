"""Catalog writes for what the media engine reports: finished segments and gaps.

``add_segment`` is called only after the engine has fsynced the file and its directory
(``FinishedSegment`` is built by ``SegmentFile.finish``), so a row always points to a
durable file. Reads for timelines live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import IntegrityError, transaction

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


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime


def timeline(camera: Camera, start: datetime, end: datetime) -> tuple[list[Span], list[Gap]]:
    """Recorded spans (merged where segments touch) and gaps of a camera in [start, end)."""
    spans: list[Span] = []
    rows = (
        Segment.objects.filter(camera=camera, start__lt=end, end__gt=start)
        .order_by("start")
        .values_list("start", "end")
    )
    for s_start, s_end in rows:
        if spans and (s_start - spans[-1].end).total_seconds() <= 0.5:
            spans[-1] = Span(spans[-1].start, max(spans[-1].end, s_end))
        else:
            spans.append(Span(s_start, s_end))
    gaps = list(
        Gap.objects.filter(camera=camera, start__lt=end).exclude(end__lte=start).order_by("start")
    )
    return spans, gaps
