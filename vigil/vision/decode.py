"""Decoding video into luma frames for the analysers, with PyAV.

Two entry points, one behaviour:

* :func:`decode_file` reads a file (MP4, MKV, TS, GIF, ...) and yields
  :class:`DecodedFrame` objects;
* :class:`PacketDecoder` is fed H.264/H.265 packets one at a time (a live RTSP
  sub-stream demuxed elsewhere) and returns the frames each packet completes.

Both pick frames on a fixed time grid (``fps``, default 5): at most one frame per
``1/fps`` slot of stream time, so a 12.5 fps stream gives exactly 5 fps on average.
Decoding "5 fps" from a 10-25 fps stream still decodes every frame (P-frames reference
their predecessors); the cheap ways to decode less are ``keyframes_only`` (only
IDR/I packets reach the decoder: 0.5-1 frame/s on a 1-2 s GOP, enough for tamper and
quality checks) and ``skip_nonref`` (the decoder drops non-reference frames, i.e.
B-frames, which camera sub-streams rarely have). ``fast`` skips the H.264/H.265 loop
filter (deblocking), about 8 % cheaper, with slight blockiness that the analysers, which
work at 1/4 scale, do not notice.

The luma plane of 8-bit YUV frames is handed out as a zero-copy strided view on the
decoder's buffer (no pixel-format conversion: ``to_ndarray(format="gray")`` would halve
the decode throughput of a 640x360 stream). The view keeps the decoder buffer alive as
long as it is referenced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.video.frame import VideoFrame

from vigil.vision.imageops import U8

#: pixel formats whose first plane is 8-bit luma
_PLANAR_8BIT = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "nv12",
        "nv21",
        "gray",
        "yuv411p",
        "yuv440p",
        "yuvj440p",
    }
)

_PTS_TIME_BASE = Fraction(1, 90000)


@dataclass(slots=True)
class DecodedFrame:
    """One decoded picture: luma plane, optional BGR picture, stream timestamp (s)."""

    ts: float
    luma: U8
    keyframe: bool
    index: int
    bgr: U8 | None = None

    @property
    def height(self) -> int:
        return int(self.luma.shape[0])

    @property
    def width(self) -> int:
        return int(self.luma.shape[1])


class RateSelector:
    """Keep at most one frame per ``1/fps`` slot of stream time (``fps=None``: keep all)."""

    __slots__ = ("_fps", "_last_slot")

    def __init__(self, fps: float | None) -> None:
        if fps is not None and fps <= 0:
            raise ValueError("fps must be positive")
        self._fps = fps
        self._last_slot: int | None = None

    def accept(self, ts: float) -> bool:
        if self._fps is None:
            return True
        # A small epsilon keeps frames sitting exactly on a slot edge (0.2, 0.4, ...)
        # in the right slot despite float rounding of pts * time_base.
        slot = math.floor(ts * self._fps + 1e-6)
        if self._last_slot is not None and slot <= self._last_slot:
            return False
        self._last_slot = slot
        return True

    def reset(self) -> None:
        self._last_slot = None


def luma_of(frame: VideoFrame) -> U8:
    """The luma plane of a decoded frame, zero-copy for 8-bit YUV formats."""
    if frame.format.name in _PLANAR_8BIT:
        plane = frame.planes[0]
        arr = np.frombuffer(cast(bytes, plane), np.uint8)
        rows = arr.reshape(frame.height, plane.line_size)
        return rows[:, : frame.width]
    return cast(U8, frame.to_ndarray(format="gray"))


def bgr_of(frame: VideoFrame) -> U8:
    return cast(U8, frame.to_ndarray(format="bgr24"))


def _configure(
    ctx: Any, *, threads: int, thread_type: str, keyframes_only: bool, skip_nonref: bool, fast: bool
) -> None:
    ctx.thread_count = max(1, threads)
    ctx.thread_type = "NONE" if threads <= 1 else thread_type
    if keyframes_only:
        ctx.skip_frame = "NONKEY"
    elif skip_nonref:
        ctx.skip_frame = "NONREF"
    if fast:
        ctx.options = {"skip_loop_filter": "all"}


def decode_file(
    path: str | Path,
    *,
    fps: float | None = 5.0,
    keyframes_only: bool = False,
    skip_nonref: bool = False,
    threads: int = 1,
    thread_type: str = "SLICE",
    fast: bool = False,
    bgr: bool = False,
    start: float = 0.0,
    end: float | None = None,
) -> Iterator[DecodedFrame]:
    """Yield frames of the first video stream of ``path``.

    Timestamps are seconds from the stream's first frame. ``start``/``end`` bound the
    yielded range (decoding still starts at the beginning: these are short clips).
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        _configure(
            stream.codec_context,
            threads=threads,
            thread_type=thread_type,
            keyframes_only=keyframes_only,
            skip_nonref=skip_nonref,
            fast=fast,
        )
        tb = stream.time_base or Fraction(1, 1000)
        tbf = float(tb)
        t0 = stream.start_time or 0
        selector = RateSelector(fps)
        index = 0
        for packet in container.demux(stream):
            if keyframes_only and packet.dts is not None and not packet.is_keyframe:
                continue
            for frame in packet.decode():
                if not isinstance(frame, VideoFrame):  # pragma: no cover - video stream only
                    continue
                pts = frame.pts if frame.pts is not None else index
                ts = (pts - t0) * tbf
                index += 1
                if ts < start - 1e-9:
                    continue
                if end is not None and ts > end:
                    return
                if not selector.accept(ts):
                    continue
                yield DecodedFrame(
                    ts=ts,
                    luma=luma_of(frame),
                    keyframe=bool(frame.key_frame),
                    index=index - 1,
                    bgr=bgr_of(frame) if bgr else None,
                )


def read_video(
    path: str | Path,
    *,
    fps: float | None = None,
    max_seconds: float | None = None,
    bgr: bool = False,
) -> list[DecodedFrame]:
    """Read a whole (short) MP4 or GIF into memory as contiguous frames.

    This is the footage reader used by tests, the evaluation and the benchmarks. Unlike
    :func:`decode_file` it copies each luma plane, so the frames outlive the decoder.
    """
    frames = []
    for f in decode_file(path, fps=fps, bgr=bgr, end=max_seconds):
        frames.append(
            DecodedFrame(
                ts=f.ts,
                luma=np.ascontiguousarray(f.luma),
                keyframe=f.keyframe,
                index=f.index,
                bgr=f.bgr,
            )
        )
    return frames


def probe(path: str | Path) -> dict[str, Any]:
    """Basic facts of the first video stream: codec, width, height, fps, duration (s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base is not None
            else (container.duration / 1e6 if container.duration else None)
        )
        return {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": float(rate) if rate else None,
            "duration": duration,
            "bit_rate": container.bit_rate,
        }


class PacketDecoder:
    """Decode a live elementary stream packet by packet (H.264 or H.265).

    ``decode()`` takes either a PyAV :class:`av.Packet` (e.g. from an RTSP demuxer; its
    pts/time_base are used) or the raw bytes of one access unit in Annex-B form with its
    timestamp ``ts`` in seconds. It returns the frames completed by that packet, already
    filtered to ``fps``. With ``keyframes_only``, packets known not to be keyframes
    (``keyframe=False`` or a PyAV packet without the key flag) are dropped before the
    decoder, and the decoder itself skips non-key frames.
    """

    def __init__(
        self,
        codec: str = "h264",
        *,
        fps: float | None = 5.0,
        keyframes_only: bool = False,
        skip_nonref: bool = False,
        threads: int = 1,
        thread_type: str = "SLICE",
        fast: bool = False,
        bgr: bool = False,
        extradata: bytes | None = None,
    ) -> None:
        if codec in ("h265", "hevc"):
            codec = "hevc"
        self._ctx: Any = av.CodecContext.create(codec, "r")
        if extradata:
            self._ctx.extradata = extradata
        _configure(
            self._ctx,
            threads=threads,
            thread_type=thread_type,
            keyframes_only=keyframes_only,
            skip_nonref=skip_nonref,
            fast=fast,
        )
        self._keyframes_only = keyframes_only
        self._bgr = bgr
        self._selector = RateSelector(fps)
        self._index = 0
        self.time_base: Fraction = _PTS_TIME_BASE

    @classmethod
    def for_stream(cls, stream: Any, **options: Any) -> PacketDecoder:
        """A decoder for a PyAV video stream of an open container (e.g. an RTSP URL):
        same codec, and the parameter sets (SPS/PPS from the SDP) as extradata."""
        ctx = stream.codec_context
        return cls(ctx.name, extradata=bytes(ctx.extradata or b"") or None, **options)

    @property
    def codec_name(self) -> str:
        return str(self._ctx.name)

    def decode(
        self, packet: bytes | av.Packet[Any], ts: float | None = None, keyframe: bool | None = None
    ) -> list[DecodedFrame]:
        if isinstance(packet, av.Packet):
            pkt = packet
            if keyframe is None:
                keyframe = bool(pkt.is_keyframe)
            if pkt.time_base is not None:
                self.time_base = Fraction(pkt.time_base)
            if ts is not None:
                pkt.pts = round(ts / self.time_base)
        else:
            if keyframe is None and self._keyframes_only:
                keyframe = _annexb_has_idr(packet, self._ctx.name)
            pkt = av.Packet(packet)
            if ts is not None:
                self.time_base = _PTS_TIME_BASE
                pkt.pts = round(ts / _PTS_TIME_BASE)
                pkt.time_base = _PTS_TIME_BASE
        if self._keyframes_only and keyframe is False:
            return []
        return self._collect(self._ctx.decode(pkt))

    def flush(self) -> list[DecodedFrame]:
        """Drain frames still buffered in the decoder (end of stream)."""
        try:
            return self._collect(self._ctx.decode(None))
        except av.error.EOFError:  # pragma: no cover - already flushed
            return []

    def _collect(self, frames: Iterable[Any]) -> list[DecodedFrame]:
        out: list[DecodedFrame] = []
        for frame in frames:
            ts = frame.pts * float(self.time_base) if frame.pts is not None else float(self._index)
            self._index += 1
            if not self._selector.accept(ts):
                continue
            out.append(
                DecodedFrame(
                    ts=ts,
                    luma=luma_of(frame),
                    keyframe=bool(frame.key_frame),
                    index=self._index - 1,
                    bgr=bgr_of(frame) if self._bgr else None,
                )
            )
        return out


def _annexb_has_idr(data: bytes, codec: str) -> bool:
    """True when an Annex-B access unit holds an IDR/IRAP slice (or parameter sets)."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        header = data[i + 3]
        if codec == "hevc":
            nal_type = (header >> 1) & 0x3F
            if 16 <= nal_type <= 23 or nal_type in (32, 33, 34):
                return True
        else:
            nal_type = header & 0x1F
            if nal_type in (5, 7, 8):
                return True
        i += 3


def iter_packets(path: str | Path) -> Iterator[tuple[bytes, float, bool]]:
    """Yield ``(annexb_bytes, ts, keyframe)`` for the video packets of an MP4/TS file.

    A test and benchmark helper that imitates what an RTSP client hands to
    :class:`PacketDecoder`: MP4 (``avcC``/``hvcC``) packets are converted to Annex-B with
    the bitstream filter, and parameter sets are carried in-band.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        name = stream.codec_context.name
        bsf = BitStreamFilterContext(f"{'hevc' if name == 'hevc' else 'h264'}_mp4toannexb", stream)
        tb = stream.time_base or Fraction(1, 90000)
        tbf = float(tb)
        t0 = stream.start_time or 0
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            for out in bsf.filter(packet):
                pts = out.pts if out.pts is not None else out.dts
                ts = (pts - t0) * tbf if pts is not None else 0.0
                yield bytes(out), ts, bool(out.is_keyframe)


def decode_packets(
    packets: Iterable[tuple[bytes, float] | tuple[bytes, float, bool]],
    codec: str = "h264",
    **options: Any,
) -> Iterator[DecodedFrame]:
    """Decode ``(bytes, ts[, keyframe])`` tuples with a :class:`PacketDecoder`."""
    decoder = PacketDecoder(codec, **options)
    for item in packets:
        key = item[2] if len(item) > 2 else None
        yield from decoder.decode(item[0], item[1], key)
    yield from decoder.flush()
