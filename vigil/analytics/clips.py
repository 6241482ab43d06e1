"""Camera-like H.264 clips made from frames, as the RTSP depacketizer would hand them out.

Used by the system-level evaluation, the tests and the benchmark: frames (real footage,
optionally with synthetic tampering) are encoded like a camera's sub-stream (640x360,
no B-frames, a keyframe every 2 s, ~450 kbit/s, parameter sets repeated in-band), then
turned into what :class:`vigil.media.rtp.H264Depacketizer` emits: MP4 samples
(length-prefixed NAL units without parameter sets) with the current
:class:`~vigil.media.codecs.VideoParams`. So the analysis sees compression, keyframes
re-coding the picture and the decoder path of production, not clean frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vigil.media.codecs import VideoParams, split_annexb
from vigil.vision.imageops import U8

SUB_WIDTH, SUB_HEIGHT = 640, 360


@dataclass(frozen=True, slots=True)
class Sample:
    data: bytes  # MP4 sample (4-byte lengths)
    ts: float  # seconds from the clip start
    keyframe: bool
    params: VideoParams


def to_sub(frame: U8) -> U8:
    """A grey frame at the sub-stream's 640x360."""
    if frame.ndim == 3:
        frame = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8)
    if frame.shape[:2] != (SUB_HEIGHT, SUB_WIDTH):
        interp = cv2.INTER_AREA if frame.shape[0] > SUB_HEIGHT else cv2.INTER_LINEAR
        frame = np.asarray(cv2.resize(frame, (SUB_WIDTH, SUB_HEIGHT), interpolation=interp))
    return frame


def encode(
    frames: Iterable[U8], fps: float, *, bitrate_kbps: int = 450, gop_seconds: float = 2.0
) -> Iterator[tuple[bytes, float, bool]]:
    """Encode grey 640x360 frames as an Annex-B H.264 camera stream: (bytes, ts, key)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = SUB_WIDTH, SUB_HEIGHT
    ctx.pix_fmt = "yuv420p"
    rate = Fraction(fps).limit_denominator(1000)
    ctx.time_base = 1 / rate
    ctx.framerate = rate
    ctx.bit_rate = bitrate_kbps * 1000
    gop = max(1, round(fps * gop_seconds))
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    ctx.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
    }
    ctx.open()
    neutral: U8 | None = None
    for i, grey in enumerate(frames):
        if neutral is None:
            neutral = np.full((SUB_HEIGHT // 2, SUB_WIDTH // 2), 128, np.uint8)
        yuv = np.concatenate(
            [grey, neutral.reshape(-1, SUB_WIDTH), neutral.reshape(-1, SUB_WIDTH)], axis=0
        )
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vf.pts = i
        for pkt in ctx.encode(vf):
            yield bytes(pkt), float(pkt.pts or 0) / float(rate), bool(pkt.is_keyframe)
    for pkt in ctx.encode(None):
        yield bytes(pkt), float(pkt.pts or 0) / float(rate), bool(pkt.is_keyframe)


def write_annexb(frames: Iterable[U8], fps: float, path: Path, **options: int) -> Path:
    """An Annex-B file for the RTSP simulator (starts with a keyframe and its headers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for data, _ts, _key in encode(frames, fps, **options):
            fh.write(data)
    tmp.replace(path)
    return path


def samples(packets: Iterable[tuple[bytes, float, bool]]) -> Iterator[Sample]:
    """What the depacketizer makes of an Annex-B H.264 stream: parameter sets taken out
    into VideoParams, the rest as a length-prefixed sample."""
    sps: bytes = b""
    pps: bytes = b""
    params: VideoParams | None = None
    for data, ts, key in packets:
        parts: list[bytes] = []
        for nal in split_annexb(data):
            kind = nal[0] & 0x1F
            if kind == 7:
                sps = nal
            elif kind == 8:
                pps = nal
            elif kind != 9:  # access unit delimiters are dropped, as the depacketizer does
                parts.append(len(nal).to_bytes(4, "big") + nal)
        if sps and pps and (params is None or params.sps != (sps,) or params.pps != (pps,)):
            params = VideoParams(codec="h264", sps=(sps,), pps=(pps,))
        if params is None or not parts:
            continue
        yield Sample(b"".join(parts), ts, key, params)
