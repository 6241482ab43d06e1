"""H.265 -> H.264 for the browser, with the ffmpeg CLI (libx264 ultrafast, zerolatency).

Chromium cannot decode H.265, so an H.265 camera is shown through its H.264
sub-stream or transcoded on demand (docs/decisions/0012-h265-in-the-browser.md):

* :class:`TranscodeSource` (live): the camera's frames from a
  :class:`~vigil.live.relay.RtspSource` go to ``ffmpeg`` on stdin as an Annex-B byte
  stream (parameter sets before each keyframe, an access unit delimiter after each
  picture so the parser hands it on at once); ffmpeg scales it down, drops frames above
  the frame-rate cap and encodes H.264 into FLV on stdout. FLV is used only because its
  tags carry their length: every encoded picture can be taken as soon as it is written,
  as length-prefixed (AVCC) NAL units with a keyframe flag, and re-muxed by the engine's
  :class:`~vigil.media.fmp4.LiveMuxer` with the camera's own timestamps. One process per
  camera, shared by every viewer, one thread each (``-threads 1``), so the number of
  transcodes bounds the CPU they can take.
* :func:`transcode_segment` (playback): one recorded segment file -> a fragmented MP4
  (H.264, audio copied) with the same time origin, cached by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import struct
import subprocess
from collections import deque
from pathlib import Path

from vigil.live.relay import RtspSource, Source, SourceState
from vigil.media.codecs import VideoParams
from vigil.media.fmp4 import LiveMuxer, params_from_avcc
from vigil.media.rtp import Frame

__all__ = [
    "FFMPEG",
    "FlvReader",
    "TranscodeSource",
    "annexb_access_unit",
    "ffmpeg_live_command",
    "transcode_segment",
]

log = logging.getLogger("vigil.live.transcode")

FFMPEG = os.environ.get("VIGIL_FFMPEG", "ffmpeg")
_START = b"\x00\x00\x00\x01"
_AUD = {"h265": _START + b"\x46\x01\x50", "h264": _START + b"\x09\xf0"}
MAX_STDIN_BACKLOG = 4 << 20


def annexb_access_unit(frame: Frame, *, with_params: bool) -> bytes:
    """A frame's length-prefixed sample as Annex-B, with parameter sets if asked, followed
    by an access unit delimiter (which tells ffmpeg's parser the picture is complete)."""
    out = bytearray()
    params = frame.params
    codec = params.codec if params is not None else "h265"
    if with_params and params is not None:
        for nal in (*params.vps, *params.sps, *params.pps):
            out += _START + nal
    data = frame.data
    pos = 0
    end = len(data)
    while pos + 4 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        out += _START
        out += data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    out += _AUD.get(codec, _AUD["h265"])
    return bytes(out)


def ffmpeg_live_command(codec: str, height: int, decimate: int) -> list[str]:
    """The ffmpeg command line of a live transcode (no URL, no credential: stdin only)."""
    filters = [f"scale=-2:min({height}\\,ih)"]
    if decimate > 1:
        filters.insert(0, f"select=not(mod(n\\,{decimate}))")
    return [
        FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-threads", "1", "-fflags", "nobuffer", "-flags", "low_delay",
        "-probesize", "32", "-analyzeduration", "0",
        "-f", "hevc" if codec == "h265" else "h264", "-i", "pipe:0",
        "-an", "-vf", ",".join(filters), "-fps_mode", "passthrough",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-threads", "1",
        "-profile:v", "main", "-pix_fmt", "yuv420p", "-g", "20", "-bf", "0",
        "-f", "flv", "-flush_packets", "1", "pipe:1",
    ]  # fmt: skip


class FlvReader:
    """Incremental FLV parser: yields (keyframe, AVCC sample) and tracks the avcC params."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._header = False
        self.params: VideoParams | None = None

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        self._buf += data
        buf = self._buf
        out: list[tuple[bool, bytes]] = []
        pos = 0
        if not self._header:
            if len(buf) < 13:
                return out
            if buf[:3] != b"FLV":
                raise ValueError("ffmpeg did not write FLV")
            pos = struct.unpack_from(">I", buf, 5)[0] + 4
            self._header = True
        while pos + 11 <= len(buf):
            kind = buf[pos]
            size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            end = pos + 11 + size
            if end + 4 > len(buf):
                break
            if kind == 9 and size > 5:
                body = bytes(buf[pos + 11 : end])
                key = body[0] >> 4 == 1
                if body[0] & 0x0F == 7:  # AVC
                    if body[1] == 0:
                        self.params = params_from_avcc(body[5:])
                    elif body[1] == 1 and len(body) > 5:
                        out.append((key, body[5:]))
            pos = end + 4
        del buf[:pos]
        return out


class TranscodeSource(Source):
    """A live H.264 version of an H.265 :class:`RtspSource` (see module docstring)."""

    kind = "transcode"

    def __init__(
        self,
        base: RtspSource,
        *,
        height: int = 720,
        max_fps: float = 12.5,
        release_base: bool = True,
    ) -> None:
        super().__init__((*base.key, "transcode"))
        self.base = base
        self.target_height = height
        self.max_fps = max_fps
        self.release_base = release_base
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ticks: deque[int] = deque()
        self._muxer = LiveMuxer()
        self._need_key = True
        self._decimate = 1
        self._fed = 0
        self._fps_probe: list[int] = []
        self.cpu_seconds = 0.0

    async def run(self) -> None:
        self.base.frame_listeners.append(self._on_input)
        try:
            codec = await self.base.wait_codec()
            self._set_codec("h264")
            attempt = 0
            while not self.stopping and not self.base.stopping:
                started = self.frames_out
                await self._process(codec or "h265")
                if self.stopping:
                    break
                attempt = 0 if self.frames_out > started else attempt + 1
                self._set_state(SourceState.RECONNECTING, "transcoder restarted")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(2.0, 0.5 * 2**attempt)):
                        await self._stopping.wait()
        finally:
            with contextlib.suppress(ValueError):
                self.base.frame_listeners.remove(self._on_input)
            if self.release_base and self.hub is not None:
                self.hub.release(self.base)  # the hold taken by RelayHub.acquire_transcode

    async def _process(self, codec: str) -> None:
        self._need_key = True
        self._ticks.clear()
        self._fed = 0
        cmd = ffmpeg_live_command(codec, self.target_height, self._decimate)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._proc = proc
        self.pid = proc.pid
        assert proc.stdout is not None
        reader = FlvReader()
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                read = asyncio.ensure_future(proc.stdout.read(1 << 16))
                done, _ = await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                    break
                data = read.result()
                if not data:
                    break
                for key, sample in reader.feed(data):
                    self._emit(key, sample, reader.params)
        finally:
            stop.cancel()
            self.cpu_seconds += _cpu_seconds(proc.pid)
            self._proc = None
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()

    def _on_input(self, frame: Frame) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        if len(self._fps_probe) < 12:
            self._fps_probe.append(frame.ticks)
            if len(self._fps_probe) == 12:
                span = (self._fps_probe[-1] - self._fps_probe[0]) / 90000
                fps = 11 / span if span > 0 else 0
                decimate = max(1, math.ceil(fps / self.max_fps - 0.05)) if fps else 1
                if decimate != self._decimate:
                    self._decimate = decimate  # takes effect when ffmpeg restarts
                    proc.kill()
                    return
        transport = proc.stdin.transport
        if transport.get_write_buffer_size() > MAX_STDIN_BACKLOG:
            self._need_key = True  # ffmpeg cannot keep up: skip to the next keyframe
            return
        if self._need_key:
            if not frame.keyframe or frame.params is None or not frame.params.complete:
                return
            self._need_key = False
        proc.stdin.write(annexb_access_unit(frame, with_params=frame.keyframe))
        if self._fed % self._decimate == 0:
            self._ticks.append(frame.ticks)
        self._fed += 1

    def _emit(self, key: bool, sample: bytes, params: VideoParams | None) -> None:
        if params is None or not self._ticks:
            return
        ticks = self._ticks.popleft()
        frame = Frame(0, ticks, sample, key, params)
        chunk = self._muxer.push(frame)
        if chunk is None:
            return
        if key:
            with contextlib.suppress(Exception):
                self.codec_string = params.codec_string
                self.width, self.height = params.width, params.height
        self.publish(chunk, key)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a (still existing) process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def transcode_segment(
    source: Path, target: Path, *, height: int = 720, timeout: float = 120.0
) -> float:
    """Transcode one recorded segment to fragmented MP4 H.264 at ``target`` (written to a
    temporary name and renamed). Returns the CPU seconds ffmpeg used."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source), "-map", "0:v:0", "-map", "0:a?",
        "-vf", f"scale=-2:min({height}\\,ih)",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-pix_fmt", "yuv420p",
        "-bf", "0", "-force_key_frames", "source", "-c:a", "copy",
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
        "-f", "mp4", str(tmp),
    ]  # fmt: skip
    try:
        before = os.times()
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
        after = os.times()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
