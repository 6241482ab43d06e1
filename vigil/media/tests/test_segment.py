"""Segment layout, SegmentWriter cutting/finishing and crash recovery."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from vigil.media.clock import StreamClock
from vigil.media.fmp4 import scan
from vigil.media.rtp import Frame
from vigil.media.segment import (
    FinishedSegment,
    SegmentWriter,
    parse_segment_path,
    recover,
    segment_path,
    validate_camera_code,
)
from vigil.media.simulator.fixtures import Fixture
from vigil.media.tests.helpers import audio_frames, decode_frames, ffprobe, fixture_frames

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def fixed_clock(start: float = T0) -> StreamClock:
    """A clock whose wall time stays at ``start`` (stream time alone advances)."""
    return StreamClock(90000, wall=lambda: start, mono=lambda: 0.0)


def test_path_layout_round_trip(tmp_path: Path) -> None:
    p = segment_path(tmp_path, "GATE-01", T0 + 3661.7, 3)
    assert p == tmp_path / "GATE-01" / "2026-01-01" / "010101-03.mp4"
    name = parse_segment_path(p)
    assert name.camera_code == "GATE-01"
    assert name.seq == 3
    assert name.start == dt.datetime(2026, 1, 1, 1, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("code", ["", "../x", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_unsafe_camera_codes_rejected(code: str) -> None:
    with pytest.raises(ValueError, match="camera code"):
        validate_camera_code(code)


def test_parse_rejects_foreign_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="segment"):
        parse_segment_path(tmp_path / "CAM" / "2026-01-01" / "notes.txt")


def _record(volume: Path, frames: list[Frame], **kw: object) -> list[FinishedSegment]:
    writer = SegmentWriter(volume, "CAM01", clock=fixed_clock(), **kw)  # type: ignore[arg-type]
    done = []
    for f in frames:
        seg = writer.write(f)
        if seg is not None:
            done.append(seg.finish())
    last = writer.close()
    if last is not None:
        done.append(last.finish())
    return done


@pytest.mark.footage
def test_cuts_at_first_keyframe_after_target(main_h264: Fixture, volume: Path) -> None:
    frames = fixture_frames(main_h264)  # 12 s, keyframe every 2 s
    segs = _record(volume, frames, target_duration=5.0)
    # Keyframes at 0, 2, 4, 6, 8, 10 s: first one at or after 5 s is 6 s.
    assert [round(s.duration, 3) for s in segs] == [6.0, 6.0]
    assert segs[0].end_utc == segs[1].start_utc == T0 + 6.0
    assert segs[0].start_utc == T0
    for s in segs:
        probe = ffprobe(s.path)
        assert float(probe["format"]["duration"]) == pytest.approx(s.duration, abs=0.01)
        assert hashlib.sha256(s.path.read_bytes()).hexdigest() == s.sha256
        assert s.size == s.path.stat().st_size
        assert (s.codec, s.width, s.height, s.fps) == ("h264", 1920, 1080, 10.0)
        assert s.codec_string == "avc1.640028"
        assert not s.has_audio
        assert s.fragments == 6  # every keyframe and every ~1 s
        assert s.frames == 60
        decoded, errors = decode_frames(s.path)
        assert decoded == 60
        assert not errors
    assert segs[0].path.name == "000000-00.mp4"
    assert oct(segs[0].path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.footage
def test_parameter_change_starts_new_segment(
    main_h264: Fixture, sub_h264: Fixture, volume: Path
) -> None:
    a = fixture_frames(main_h264, 30)
    b = fixture_frames(sub_h264, 30)
    for f in b:
        f.ticks += 30 * 9000
    segs = _record(volume, a + b)
    assert [(s.width, s.height) for s in segs] == [(1920, 1080), (640, 360)]
    assert segs[0].duration == pytest.approx(3.0)
    assert ffprobe(segs[1].path)["streams"][0]["width"] == 640


@pytest.mark.footage
def test_audio_is_kept(car_av: Fixture, volume: Path) -> None:
    frames = fixture_frames(car_av, 100)
    config, audio = audio_frames(car_av)
    merged = sorted(
        frames + audio, key=lambda f: f.ticks / (90000 if f.track == 0 else config.sample_rate)
    )
    segs = _record(volume, merged, audio=config, target_duration=4.0)
    assert all(s.has_audio and s.audio_codec_string == "mp4a.40.2" for s in segs)
    probe = ffprobe(segs[0].path)
    assert sorted(st["codec_name"] for st in probe["streams"]) == ["aac", "h264"]
    assert segs[0].mime_codecs == "avc1.64001f,mp4a.40.2"


@pytest.mark.footage
def test_same_second_gets_next_sequence(main_h264: Fixture, volume: Path) -> None:
    frames = fixture_frames(main_h264, 20)
    first = _record(volume, frames)
    second = _record(volume, frames)  # same start second: O_EXCL refuses, seq moves on
    assert first[0].path.name == "000000-00.mp4"
    assert second[0].path.name == "000000-01.mp4"


@pytest.mark.footage
def test_frames_before_first_keyframe_are_dropped(main_h264: Fixture, volume: Path) -> None:
    frames = fixture_frames(main_h264, 40)[3:]
    writer = SegmentWriter(volume, "CAM01", clock=fixed_clock())
    for f in frames:
        writer.write(f)
    assert writer.dropped == 17  # up to the keyframe at 2 s
    seg = writer.close()
    assert seg is not None
    assert seg.finish().frames == 20


@pytest.mark.footage
def test_recover_truncates_torn_tail(main_h264: Fixture, volume: Path) -> None:
    frames = fixture_frames(main_h264)
    writer = SegmentWriter(volume, "CAM01", clock=fixed_clock(), target_duration=60)
    for f in frames:
        writer.write(f)
    seg = writer.current
    assert seg is not None
    path = seg.path
    # Simulate a crash: the process dies while writing; the tail fragment is torn.
    os.close(seg._fd)
    info = scan(path)
    size = info.fragments[-1].offset + 1000
    with open(path, "r+b") as f:
        f.truncate(size)
    rec = recover(path)
    assert rec is not None
    assert rec.recovered
    kept = scan(path)
    assert not kept.truncated
    assert path.stat().st_size == rec.size
    assert rec.fragments == len(info.fragments) - 1
    assert rec.start_utc == pytest.approx(T0)
    assert rec.duration == pytest.approx(kept.duration)
    assert rec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    decoded, errors = decode_frames(path)
    assert decoded == rec.frames
    assert not errors


def test_recover_gives_none_without_fragments(tmp_path: Path) -> None:
    path = tmp_path / "CAM" / "2026-01-01" / "000000-00.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00\x00\x00\x08free")
    assert recover(path) is None


@pytest.mark.footage
def test_out_of_order_timestamps_do_not_crash(main_h264: Fixture, volume: Path) -> None:
    """B-frame-like timestamps (presentation order != decode order) are tolerated."""
    frames = fixture_frames(main_h264, 40)
    for a, b in zip(frames[1::4], frames[2::4], strict=False):
        if not a.keyframe and not b.keyframe:
            a.ticks, b.ticks = b.ticks, a.ticks
    segs = _record(volume, frames)
    assert sum(s.frames for s in segs) == 40
    assert ffprobe(segs[0].path)["streams"][0]["codec_name"] == "h264"


@pytest.mark.footage
def test_storage_failure_is_an_oserror(main_h264: Fixture, tmp_path: Path) -> None:
    """A volume that is not a directory makes the first write raise OSError."""
    volume = tmp_path / "not-a-dir"
    volume.write_text("x")
    writer = SegmentWriter(volume, "CAM01", clock=fixed_clock())
    with pytest.raises(OSError, match="not-a-dir"):
        writer.write(fixture_frames(main_h264, 1)[0])
