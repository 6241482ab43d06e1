from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from vigil.vision.decode import (
    PacketDecoder,
    RateSelector,
    decode_file,
    decode_packets,
    iter_packets,
    probe,
    read_video,
)
from vigil.vision.footage import footage_path


def _synthetic_clip(path: Path, codec: str = "libx264", n: int = 50, fps: int = 10) -> Path:
    """A small moving-square clip encoded with PyAV (no footage needed)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.codec_context.gop_size = 10
        stream.codec_context.max_b_frames = 0
        for i in range(n):
            img = np.full((96, 160, 3), 90, np.uint8)
            img[30:60, 5 + 2 * i : 35 + 2 * i] = 230
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
    return path


def test_rate_selector_keeps_one_frame_per_slot() -> None:
    sel = RateSelector(5.0)
    ts = [i / 12.5 for i in range(125)]  # 10 s at 12.5 fps
    kept = [t for t in ts if sel.accept(t)]
    assert len(kept) == 50  # exactly 5 fps on average
    assert RateSelector(None).accept(0.0)
    with pytest.raises(ValueError):
        RateSelector(0)


def test_decode_file_rate_and_luma_view(tmp_path: Path) -> None:
    clip = _synthetic_clip(tmp_path / "a.mp4")
    all_frames = list(decode_file(clip, fps=None))
    assert len(all_frames) == 50
    five = list(decode_file(clip, fps=5.0))
    assert len(five) == 25
    assert [round(f.ts, 2) for f in five[:3]] == [0.0, 0.2, 0.4]
    f = five[3]
    assert f.luma.dtype == np.uint8
    assert f.luma.shape == (96, 160)
    # the luma plane is the Y of BT.601 limited range: bright square ~ 200+, grey ~ 90
    assert f.luma[45, 5 + 2 * 6 + 10] > f.luma[5, 150] + 80
    keys = list(decode_file(clip, fps=None, keyframes_only=True))
    assert len(keys) == 5
    assert all(k.keyframe for k in keys)
    assert probe(clip)["width"] == 160


def test_packet_decoder_matches_file_decoder(tmp_path: Path) -> None:
    clip = _synthetic_clip(tmp_path / "b.mp4")
    packets = list(iter_packets(clip))
    assert len(packets) == 50
    assert packets[0][2]
    from_packets = list(decode_packets(packets, "h264", fps=None))
    from_file = list(decode_file(clip, fps=None))
    assert len(from_packets) == len(from_file)
    for a, b in zip(from_packets, from_file, strict=True):
        assert abs(a.ts - b.ts) < 1e-6
        assert np.array_equal(a.luma, b.luma)
    dec = PacketDecoder("h264", fps=None, keyframes_only=True)
    got = [f for data, ts, key in packets for f in dec.decode(data, ts, key)] + dec.flush()
    assert len(got) == 5


def test_gif_reader_and_bgr(footage: Any) -> None:
    frames, fps = footage("face-demographics-walking.gif", bgr=True)
    assert fps == pytest.approx(12.0, abs=0.5)
    assert len(frames) == 35
    assert frames[0].bgr is not None
    assert frames[0].bgr.shape == (270, 480, 3)
    assert frames[0].luma.flags["C_CONTIGUOUS"]


def test_h264_and_h265_substreams_decode(substream: str, tmp_path: Path) -> None:
    info = probe(substream)
    assert (info["width"], info["height"]) == (640, 360)
    frames = list(decode_file(substream, fps=5.0))
    assert len(frames) == pytest.approx(30 * 5, abs=2)
    # H.265 through the packet decoder (cameras' main streams are often HEVC)
    hevc = tmp_path / "c265.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", substream, "-t", "4", "-c:v", "libx265",
         "-x265-params", "log-level=error:bframes=0:keyint=10", str(hevc)],
        check=True,
    )  # fmt: skip
    out = list(decode_packets(iter_packets(hevc), "hevc", fps=5.0))
    assert len(out) == pytest.approx(20, abs=1)
    assert out[0].luma.shape == (360, 640)


def test_read_video_bounds(footage: Any) -> None:
    frames, _ = footage("car-detection.mp4")
    assert len(frames) == 377
    first = read_video(_path("car-detection.mp4"), max_seconds=2)
    assert first[-1].ts <= 2.0


def _path(name: str) -> Path:
    p = footage_path(name)
    assert p is not None
    return p


def test_packet_decoder_for_a_demuxed_stream(tmp_path: Path) -> None:
    """The live path: packets demuxed by PyAV (as from an RTSP URL), parameter sets
    out of band in the stream's extradata."""
    clip = _synthetic_clip(tmp_path / "d.mp4")
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        dec = PacketDecoder.for_stream(stream, fps=5.0)
        frames = [f for pkt in container.demux(stream) if pkt.size for f in dec.decode(pkt)]
    frames += dec.flush()
    assert len(frames) == 25
    assert frames[1].ts == pytest.approx(0.2)
