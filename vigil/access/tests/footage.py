"""Real recorded footage for the access tests: the sample footage, encoded like a camera's
main stream (1080p H.264, 10 fps, keyframe every 2 s), run through the recorder's own
segment writer (``vigil.media.segment.SegmentWriter``, what ``vigil record`` uses after
RTP) and entered in the catalog like the recorder does (file fsynced, then the row)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from vigil.media.clock import StreamClock
from vigil.media.rtp import Frame
from vigil.media.segment import SegmentWriter
from vigil.media.simulator.fixtures import MAIN_H264, FixtureSpec, build_fixture


def fixture_frames(spec: FixtureSpec = MAIN_H264) -> tuple[list[Frame], int]:
    """The fixture's frames through the real RTP packetizer/depacketizer path, and the
    frame interval in 90 kHz ticks."""
    from vigil.media.tests.helpers import fixture_frames as frames_of

    fixture = build_fixture(spec)
    frames = frames_of(fixture)
    return frames, round(90000 / spec.fps)


def record(
    code: str,
    start: datetime,
    seconds: float,
    *,
    segment_seconds: float = 4.0,
    spec: FixtureSpec = MAIN_H264,
) -> list[object]:
    """Record ``seconds`` of footage for camera ``code`` from ``start`` (UTC) into its
    recorder's first volume and the catalog. Returns the Segment rows."""
    from vigil.recording.catalog import add_segment
    from vigil.school.models import Camera

    camera = Camera.objects.select_related("recorder").get(code=code)
    volume = camera.recorder.volumes.order_by("pk").first()
    assert volume is not None
    Path(volume.path).mkdir(parents=True, exist_ok=True)
    frames, step = fixture_frames(spec)
    t0 = start.timestamp()
    now = [0.0]  # stream seconds so far: the wall clock moves with the stream
    clock = StreamClock(90000, wall=lambda: t0 + now[0], mono=lambda: now[0])
    writer = SegmentWriter(volume.path, code, clock=clock, target_duration=segment_seconds)
    total = round(seconds * spec.fps)
    rows = []
    n = len(frames)
    for i in range(total):
        f = frames[i % n]
        loop = i // n
        frame = Frame(0, f.ticks + loop * n * step, f.data, f.keyframe, f.params)
        now[0] = frame.ticks / 90000
        done = writer.write(frame)
        if done is not None:
            rows.append(add_segment(camera, volume, done.finish()))
    last = writer.close()
    if last is not None:
        rows.append(add_segment(camera, volume, last.finish()))
    return rows


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
