"""Fragmented MP4 writer, indexer and live muxer, checked with ffprobe/ffmpeg."""

from __future__ import annotations

import io
import itertools
import random
import subprocess
from pathlib import Path

import pytest

from vigil.media.fmp4 import (
    AUDIO_TRACK_ID,
    VIDEO_TRACK_ID,
    LiveMuxer,
    Mp4Error,
    Sample,
    TrackRun,
    fragment,
    init_segment,
    read_init,
    scan,
)
from vigil.media.rtp import Frame
from vigil.media.simulator.fixtures import Fixture
from vigil.media.tests.helpers import audio_frames, decode_frames, ffprobe, fixture_frames

pytestmark = pytest.mark.footage


def write_file(
    path: Path, frames: list[Frame], audio: list[Frame] | None = None, audio_config: object = None
) -> list[int]:
    """Write frames as init + one fragment per GOP; return per-fragment frame counts."""
    params = frames[0].params
    assert params is not None
    out = bytearray(init_segment(params, audio_config, start_utc=1_700_000_000.25))  # type: ignore[arg-type]
    gops: list[list[Frame]] = []
    for f in frames:
        if f.keyframe or not gops:
            gops.append([])
        gops[-1].append(f)
    apos = 0
    for seq, gop in enumerate(gops, 1):
        end = gops[seq][0].ticks if seq < len(gops) else gop[-1].ticks + 9000
        ticks = [f.ticks for f in gop] + [end]
        samples = [Sample(f.data, ticks[i + 1] - ticks[i], f.keyframe) for i, f in enumerate(gop)]
        runs = [TrackRun(VIDEO_TRACK_ID, gop[0].ticks - frames[0].ticks, samples)]
        if audio:
            rate = audio_config.sample_rate  # type: ignore[attr-defined]
            take = [a for a in audio[apos:] if a.ticks < end * rate // 90000]
            if take:
                runs.append(
                    TrackRun(
                        AUDIO_TRACK_ID, take[0].ticks, [Sample(a.data, 1024, True) for a in take]
                    )
                )
                apos += len(take)
        out += fragment(seq, runs)
    path.write_bytes(bytes(out))
    return [len(g) for g in gops]


@pytest.mark.parametrize("name", ["main_h264", "main_h265"])
def test_writer_output_probed_by_ffprobe(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fx: Fixture = request.getfixturevalue(name)
    frames = fixture_frames(fx, 60)
    path = tmp_path / "out.mp4"
    counts = write_file(path, frames)
    probe = ffprobe(path, frames=True)
    stream = probe["streams"][0]
    assert stream["codec_name"] == ("hevc" if fx.codec == "h265" else "h264")
    assert (stream["width"], stream["height"]) == (1920, 1080)
    assert int(stream["nb_read_frames"]) == 60
    assert float(probe["format"]["duration"]) == pytest.approx(6.0, abs=0.01)
    decoded, errors = decode_frames(path)
    assert decoded == 60
    assert not errors
    info = scan(path)
    assert info.duration == pytest.approx(6.0)
    assert [f.samples for f in info.fragments] == counts
    assert all(f.keyframe for f in info.fragments)
    assert info.start_utc == pytest.approx(1_700_000_000.25)
    assert info.video is not None
    assert info.video.codec == fx.codec
    assert info.video.codec_string == frames[0].params.codec_string  # type: ignore[union-attr]
    assert read_init(path) == path.read_bytes()[: info.init_size]


def test_audio_track(car_av: Fixture, tmp_path: Path) -> None:
    frames = fixture_frames(car_av, 100)
    config, audio = audio_frames(car_av)
    path = tmp_path / "av.mp4"
    write_file(path, frames, audio, config)
    probe = ffprobe(path)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["audio"]["codec_name"] == "aac"
    assert int(kinds["audio"]["sample_rate"]) == config.sample_rate
    assert float(probe["format"]["duration"]) == pytest.approx(8.0, abs=0.05)
    info = scan(path)
    assert info.audio is not None
    assert info.audio.codec_string == "mp4a.40.2"
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "null", "-"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0
    assert not result.stderr


def test_truncation_keeps_complete_fragments_decodable(main_h264: Fixture, tmp_path: Path) -> None:
    frames = fixture_frames(main_h264, 60)
    full = tmp_path / "full.mp4"
    counts = write_file(full, frames)
    data = full.read_bytes()
    info = scan(full)
    rng = random.Random(1234)
    cuts = sorted(rng.randrange(info.init_size, len(data)) for _ in range(6))
    for cut in cuts:
        path = tmp_path / f"cut-{cut}.mp4"
        path.write_bytes(data[:cut])
        part = scan(path)
        complete = [f for f in info.fragments if f.offset + f.size <= cut]
        assert part.fragments == complete
        assert part.truncated == (
            cut != (complete[-1].offset + complete[-1].size if complete else info.init_size)
        )
        decoded, _ = decode_frames(path)
        assert decoded >= sum(counts[: len(complete)])
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: info.init_size - 1])
    with pytest.raises(Mp4Error):
        scan(short)


def test_scan_reads_ffmpeg_fragmented_mp4(main_h264: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "ff.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "h264", "-r", "10", "-i", str(main_h264.video),
         "-c", "copy",
         "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frames:v", "40", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    info = scan(out)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (1920, 1080)
    assert sum(f.samples for f in info.fragments) == 40
    assert info.fragments[0].keyframe
    assert info.duration == pytest.approx(4.0, abs=0.11)


def test_live_muxer_stream_is_playable(
    main_h264: Fixture, sub_h264: Fixture, tmp_path: Path
) -> None:
    frames = fixture_frames(main_h264, 30)[5:] + fixture_frames(sub_h264, 20)
    mux = LiveMuxer()
    chunks = [c for c in (mux.push(f) for f in frames) if c]
    # Frames before the first keyframe are skipped; the sub-stream brings a new init.
    first_key = next(i for i, f in enumerate(frames) if f.keyframe)
    assert len(chunks) == len(frames) - first_key
    path = tmp_path / "live.mp4"
    path.write_bytes(b"".join(chunks[:10]))
    decoded, errors = decode_frames(path)
    assert decoded == 10
    assert not errors
    info = scan(path)
    assert len(info.fragments) == 10
    assert info.fragments[0].keyframe
    switch = len(frames) - 20 - first_key
    assert chunks[switch].startswith(init_segment(frames[-1].params))  # type: ignore[arg-type]


def test_live_muxer_fragments_are_contiguous(sub_h264: Fixture) -> None:
    """Decode times and durations leave no hole (Chromium would see a discontinuity)."""
    mux = LiveMuxer()
    data = b"".join(c for c in (mux.push(f) for f in fixture_frames(sub_h264, 30)) if c)
    info = scan(io.BytesIO(data))
    frags = info.fragments
    assert frags[0].duration == 9000  # from the SPS VUI frame rate (10 fps)
    for a, b in itertools.pairwise(frags):
        assert a.base_decode_time + a.duration == b.base_decode_time
