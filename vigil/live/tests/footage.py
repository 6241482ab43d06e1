"""Recorded footage for playback tests, written by the real media engine.

The simulator's fixtures (derived from the real sample footage) go through the engine's
H.264/H.265 depacketizer and :class:`~vigil.media.segment.SegmentWriter` exactly as a
recording would, only faster than real time: the stream clock is told the wall time
that matches each frame, so the segments land at chosen UTC times. ``add_segment`` and
``GapTracker`` then write the catalog rows the recorder would write.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vigil.media.clock import StreamClock
from vigil.media.rtp import Frame, H264Depacketizer, H265Depacketizer
from vigil.media.segment import FinishedSegment, SegmentWriter
from vigil.media.simulator.fixtures import MAIN_H264, MAIN_H265, SUB_H264, build_fixture
from vigil.media.tests.helpers import access_units

FIXTURES = {"main-h264": MAIN_H264, "main-h265": MAIN_H265, "sub-h264": SUB_H264}


def frames(fixture: str, seconds: float) -> Iterator[Frame]:
    """``seconds`` of a looping fixture as engine frames (single-NAL RTP packets through
    the engine's depacketizer), ticks at 90 kHz from 0."""
    fx = build_fixture(FIXTURES[fixture])
    aus = access_units(fx.video.read_bytes(), fx.codec)
    step = round(90000 / fx.spec.fps)
    out: list[Frame] = []
    dp = (
        H265Depacketizer(on_frame=out.append)
        if fx.codec == "h265"
        else H264Depacketizer(on_frame=out.append)
    )
    total = round(seconds * fx.spec.fps)
    seq = 0
    for i in range(total):
        au = aus[i % len(aus)]
        ts = (i * step) & 0xFFFFFFFF
        for j, nal in enumerate(au):
            marker = 0x80 if j == len(au) - 1 else 0
            dp.push(struct.pack(">BBHII", 0x80, 96 | marker, seq & 0xFFFF, ts, 0x1234) + nal)
            seq += 1
        yield from out
        out.clear()


@dataclass
class Clock:
    now: float


def write_span(
    volume: Path,
    code: str,
    fixture: str,
    start_utc: float,
    seconds: float,
    *,
    segment_seconds: float = 10.0,
) -> list[FinishedSegment]:
    """Record ``seconds`` of ``fixture`` for camera ``code`` from ``start_utc``."""
    wall = Clock(start_utc)
    clock = StreamClock(90000, wall=lambda: wall.now, mono=lambda: wall.now - start_utc)
    writer = SegmentWriter(volume, code, clock=clock, target_duration=segment_seconds)
    done: list[FinishedSegment] = []
    for frame in frames(fixture, seconds):
        wall.now = start_utc + frame.ticks / 90000
        seg = writer.write(frame)
        if seg is not None:
            done.append(seg.finish())
    last = writer.close()
    if last is not None:
        done.append(last.finish())
    return done


def seed_catalog(code: str, fixture: str, spans: list[tuple[float, float]], gap_cause: str) -> int:
    """Write ``spans`` [(start_utc, seconds)] for camera ``code`` with the gaps between them
    (Django must be set up). Returns the number of segments."""
    from vigil.media.ingest import Gap as EngineGap
    from vigil.media.ingest import GapCause
    from vigil.recording.catalog import GapTracker, add_segment
    from vigil.school.models import Camera

    camera = Camera.objects.select_related("recorder").get(code=code)
    volume = camera.recorder.volumes.first()
    assert volume is not None
    tracker = GapTracker.for_camera(camera)
    count = 0
    previous_end: float | None = None
    for start, seconds in spans:
        segments = write_span(Path(volume.path), code, fixture, start, seconds)
        if previous_end is not None:
            gap = EngineGap(code, previous_end, GapCause(gap_cause), "test gap")
            tracker.apply(gap)
            gap.end_utc = segments[0].start_utc
            tracker.apply(gap)
        for seg in segments:
            add_segment(camera, volume, seg)
            count += 1
        previous_end = segments[-1].end_utc
    return count


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
