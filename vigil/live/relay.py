"""Live relay: one RTSP connection per camera stream, shared by every viewer.

Framework-free (no Django import), like the media engine it builds on; everything runs
on the web server's asyncio loop (``vigil serve`` is a single uvicorn process).

* A :class:`RtspSource` connects to one camera stream with the media engine's
  :class:`~vigil.media.rtsp.RtspClient` and depacketizers, turns frames into an init
  segment plus one fMP4 fragment per frame (:class:`~vigil.media.fmp4.LiveMuxer`) and
  keeps the fragments since the last keyframe, so a viewer who joins late starts at
  once. It reconnects by itself (0.5, 1, 2, 2, ... s) while anyone watches, and keeps
  decode times continuous across reconnections.
* A :class:`~vigil.live.transcode.TranscodeSource` (H.265 -> H.264) is fed by a
  ``RtspSource`` and publishes the same way.
* A :class:`Sink` is one browser connection: it multiplexes several *channels* (one per
  tile) into one byte stream, because a browser opens at most six HTTP/1.1 connections
  per server and a wall has up to 25 tiles. Message framing (big-endian)::

      u8 kind | u8 channel | u32 length | payload
      kind 1 = fMP4 bytes for the channel's SourceBuffer
      kind 2 = JSON meta: {"codec", "state", "mode", "notice", ...}
      kind 3 = keep-alive (length 0)

  A sink that falls behind (more than ``max_backlog`` bytes waiting) skips each
  channel forward to its next keyframe instead of buffering without bound.
* :class:`RelayHub` shares sources by key, counts their users, stops a source
  ``linger`` seconds after its last user left, and caps the number of transcodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vigil.media.fmp4 import LiveMuxer
from vigil.media.rtp import Frame, make_depacketizer
from vigil.media.rtsp import (
    CameraUnreachable,
    Credentials,
    RtspClient,
    RtspError,
    StreamStalled,
    UnsupportedStream,
    redact_url,
)

__all__ = [
    "MSG_MEDIA",
    "MSG_META",
    "MSG_PING",
    "Attachment",
    "RelayHub",
    "RtspSource",
    "Sink",
    "Source",
    "SourceState",
    "StreamTarget",
    "TranscodeLimit",
    "hub",
    "split_init",
]

log = logging.getLogger("vigil.live.relay")

MSG_MEDIA = 1
MSG_META = 2
MSG_PING = 3
_HEADER = struct.Struct(">BBI")
BACKOFF = (0.5, 1.0, 2.0)
VIDEO_TIMESCALE = 90000


class SourceState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    STOPPED = "stopped"


class TranscodeLimit(Exception):
    """Every transcode slot is in use."""

    def __init__(self, in_use: int, limit: int) -> None:
        super().__init__(f"transcoding limit reached ({in_use} of {limit} in use)")
        self.in_use = in_use
        self.limit = limit


@dataclass(frozen=True)
class StreamTarget:
    """Where a camera stream is (URL without credentials) and how to log in."""

    url: str
    credentials: Credentials | None = None

    def __repr__(self) -> str:  # never show the password
        return f"StreamTarget({redact_url(self.url)!r})"


def split_init(chunk: bytes) -> tuple[bytes | None, bytes]:
    """Split a muxer output into (init segment or None, fragment)."""
    if chunk[4:8] != b"ftyp":
        return None, chunk
    pos = 0
    while pos + 8 <= len(chunk):
        size, kind = struct.unpack_from(">I4s", chunk, pos)
        if kind == b"moof":
            return chunk[:pos], chunk[pos:]
        pos += size
    return chunk, b""


# ------------------------------------------------------------------------------ sinks
class Sink:
    """One browser connection's outgoing messages (see module docstring)."""

    def __init__(self, max_backlog: int = 4 << 20) -> None:
        self.max_backlog = max_backlog
        self._parts: list[bytes] = []
        self._size = 0
        self._event = asyncio.Event()
        self.closed = False
        self.bytes_out = 0

    @property
    def backlog(self) -> int:
        """Bytes waiting to be sent."""
        return self._size

    def put(self, channel: int, kind: int, payload: bytes = b"") -> None:
        """Queue one message."""
        if self.closed:
            return
        self._parts.append(_HEADER.pack(kind, channel, len(payload)))
        if payload:
            self._parts.append(payload)
        self._size += 6 + len(payload)
        self._event.set()

    def meta(self, channel: int, **fields: Any) -> None:
        """Queue a JSON meta message."""
        self.put(channel, MSG_META, json.dumps(fields, separators=(",", ":")).encode())

    async def take(self, timeout: float, coalesce: float = 0.0) -> bytes:
        """Everything queued, waiting up to ``timeout`` for something to arrive; after
        the first message, wait ``coalesce`` seconds more so that frames of several
        cameras leave in one write."""
        if not self._parts:
            self._event.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
            # cancellation that arrives as the event fires (gh-86296), and a stream
            # whose client left would then run on for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._event.wait()
            if coalesce > 0 and self._parts:
                await asyncio.sleep(coalesce)
        parts = self._parts
        self._parts = []
        self._size = 0
        self._event.clear()
        data = b"".join(parts)
        self.bytes_out += len(data)
        return data

    def close(self) -> None:
        self.closed = True
        self._parts = []
        self._size = 0
        self._event.set()


class Attachment:
    """A sink channel fed by a source."""

    __slots__ = ("channel", "codec_sent", "media", "need_key", "sink")

    def __init__(self, sink: Sink, channel: int, *, media: bool = True) -> None:
        self.sink = sink
        self.channel = channel
        self.media = media
        self.need_key = True
        self.codec_sent = ""


# ---------------------------------------------------------------------------- sources
class Source:
    """Something that publishes an fMP4 live stream to attached sink channels."""

    kind = "direct"

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.state = SourceState.CONNECTING
        self.detail = ""
        self.codec = ""  # "h264" / "h265" once known (from the stream description)
        self.codec_string = ""  # RFC 6381 of what is published
        self.width = 0
        self.height = 0
        self.init: bytes | None = None
        self.gop: list[bytes] = []
        self.attachments: list[Attachment] = []
        self.users = 0
        self.hub: RelayHub | None = None  # the hub that shares this source, if any
        self.frames_in = 0  # camera frames received (all codecs)
        self.frames_out = 0
        self.bytes_in = 0
        self.started_mono = time.monotonic()
        self.last_frame_mono: float | None = None
        self._codec_known = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self.on_stopped: Callable[[Source], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run_guarded(), name=f"live-{'/'.join(self.key)}"
            )

    async def _run_guarded(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live source %s failed", "/".join(self.key))
        finally:
            self._set_state(SourceState.STOPPED)
            self._codec_known.set()
            if self.on_stopped is not None:
                self.on_stopped(self)

    async def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait_stopped(self, timeout: float = 5.0) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._task)

    async def wait_codec(self) -> str:
        """The stream's codec once described ("" when the source stopped first)."""
        await self._codec_known.wait()
        return self.codec

    def _set_codec(self, codec: str) -> None:
        self.codec = codec
        self._codec_known.set()

    # --- state ---------------------------------------------------------------------------
    def _set_state(self, state: SourceState, detail: str = "") -> None:
        if state == self.state and detail == self.detail:
            return
        self.state = state
        self.detail = detail
        for att in self.attachments:
            att.sink.meta(att.channel, state=str(state))

    # --- viewers -------------------------------------------------------------------------
    def attach(self, att: Attachment) -> None:
        """Start feeding ``att``: the current init and GOP at once, if there is one."""
        self.attachments.append(att)
        att.sink.meta(att.channel, state=str(self.state), source=self.kind)
        if att.media and self.init is not None and self.gop:
            self._send_init(att)
            for frag in self.gop:
                att.sink.put(att.channel, MSG_MEDIA, frag)
            att.need_key = False

    def detach(self, att: Attachment) -> None:
        with contextlib.suppress(ValueError):
            self.attachments.remove(att)

    def _send_init(self, att: Attachment) -> None:
        assert self.init is not None
        if att.codec_sent != self.codec_string:
            att.sink.meta(
                att.channel,
                codec=self.codec_string,
                width=self.width,
                height=self.height,
                state=str(self.state),
                source=self.kind,
            )
            att.codec_sent = self.codec_string
        att.sink.put(att.channel, MSG_MEDIA, self.init)

    def publish(self, chunk: bytes, keyframe: bool) -> None:
        """Send a muxer output (fragment, maybe preceded by a new init) to every viewer."""
        init, frag = split_init(chunk)
        if init is not None:
            self.init = init
        if keyframe:
            self.gop = [frag]
        elif self.gop:
            self.gop.append(frag)
            if len(self.gop) > 600:  # no keyframe for a minute: stop caching
                self.gop = []
        self.frames_out += 1
        self.last_frame_mono = time.monotonic()
        if self.state != SourceState.LIVE:
            self._set_state(SourceState.LIVE)
        for att in self.attachments:
            if not att.media:
                continue
            sink = att.sink
            if att.need_key or init is not None:
                if not keyframe or self.init is None:
                    continue
                if sink.backlog > sink.max_backlog // 2:
                    continue
                self._send_init(att)
                att.need_key = False
            elif sink.backlog > sink.max_backlog:
                att.need_key = True  # skip to the next keyframe
                continue
            sink.put(att.channel, MSG_MEDIA, frag)


class RtspSource(Source):
    """One camera stream over RTSP, relayed as fMP4 (see module docstring)."""

    def __init__(
        self,
        key: tuple[str, ...],
        target: StreamTarget,
        *,
        stall_timeout: float = 5.0,
        connect_timeout: float = 3.0,
        offline_after: float = 10.0,
    ) -> None:
        super().__init__(key)
        self.target = target
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self.offline_after = offline_after
        self.frame_listeners: list[Callable[[Frame], None]] = []
        self._muxer = LiveMuxer()
        self._client: RtspClient | None = None
        self._offset: int | None = None  # added to this connection's ticks
        self._last_ticks: int | None = None  # last published (offset) ticks
        self._last_wall = 0.0
        self.reconnects = 0

    async def run(self) -> None:
        attempt = 0
        failing_since: float | None = None
        while not self.stopping:
            frames_before = self.frames_in
            try:
                await self._session()
            except (RtspError, OSError) as exc:
                detail = str(exc)
            else:
                detail = "connection closed"
            if self._client is not None:
                client, self._client = self._client, None
                if self.stopping:
                    with contextlib.suppress(RtspError, OSError):
                        await client.teardown()
                client.close()
            if self.stopping:
                break
            now = time.monotonic()
            if self.frames_in > frames_before:
                attempt, failing_since = 0, now
            else:
                attempt += 1
                failing_since = failing_since or now
            offline = now - failing_since >= self.offline_after
            self._set_state(SourceState.OFFLINE if offline else SourceState.RECONNECTING, detail)
            self.reconnects += 1
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self) -> None:
        client = RtspClient(
            self.target.url,
            self.target.credentials,
            connect_timeout=self.connect_timeout,
            response_timeout=5.0,
        )
        self._client = client
        await client.connect()
        await client.options()
        desc = await client.describe()
        video = desc.first("video", ("H264", "H265", "HEVC"))
        if video is None:
            raise UnsupportedStream("no H.264/H.265 video track in the stream")
        codec = "h265" if video.encoding.upper() in ("H265", "HEVC") else "h264"
        self._set_codec(codec)
        depack = make_depacketizer(video.encoding, track=0, fmtp=video.fmtp, on_frame=self._frame)
        self._offset = None
        await client.setup(video, depack.push)
        await client.play()
        closed = client.closed
        play_mono = time.monotonic()
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(closed)
            self.bytes_in = client.bytes_received
            if closed.done():
                if self.stopping:
                    return
                raise client.close_reason or CameraUnreachable("connection closed by the camera")
            last = self.last_frame_mono if self.last_frame_mono is not None else play_mono
            if time.monotonic() - max(last, play_mono) > self.stall_timeout:
                raise StreamStalled(f"no video frame for {self.stall_timeout:g} s")

    def _frame(self, frame: Frame) -> None:
        if frame.track != 0:
            return
        self.frames_in += 1
        now = time.monotonic()
        if self._offset is None:
            # First frame of this connection: continue the timeline where it stopped, plus
            # the time spent reconnecting, so players see one increasing decode time.
            if self._last_ticks is None:
                self._offset = -frame.ticks
            else:
                gap = max(1, round((now - self._last_wall) * VIDEO_TIMESCALE))
                self._offset = self._last_ticks + gap - frame.ticks
        frame.ticks += self._offset
        if self._last_ticks is not None and frame.ticks <= self._last_ticks:
            frame.ticks = self._last_ticks + 1
        self._last_ticks = frame.ticks
        self._last_wall = now
        for listener in self.frame_listeners:
            try:
                listener(frame)
            except Exception:
                log.exception("live frame listener failed; removing it")
                self.frame_listeners.remove(listener)
                break
        if self.codec != "h264":
            self.last_frame_mono = now
            if self.state != SourceState.LIVE:
                self._set_state(SourceState.LIVE)
            return  # H.265 is published only through a transcoder
        chunk = self._muxer.push(frame)
        if chunk is None:
            return
        params = self._muxer.params
        if params is not None and frame.keyframe:
            with contextlib.suppress(Exception):
                self.codec_string = params.codec_string
                self.width, self.height = params.width, params.height
        self.publish(chunk, frame.keyframe)


# -------------------------------------------------------------------------------- hub
SourceFactory = Callable[[], Source]


class RelayHub:
    """Shares sources by key and stops them ``linger`` seconds after their last user."""

    def __init__(self) -> None:
        self.sources: dict[tuple[str, ...], Source] = {}
        self.linger = 10.0
        self.max_transcodes = 2
        self.transcode_factory: Callable[[RtspSource], Source] | None = None

    def configure(self, *, linger: float, max_transcodes: int) -> None:
        self.linger = linger
        self.max_transcodes = max_transcodes

    def get(self, key: tuple[str, ...]) -> Source | None:
        return self.sources.get(key)

    def acquire(self, key: tuple[str, ...], factory: SourceFactory) -> Source:
        """The running source for ``key`` (started with ``factory`` if none); one more user."""
        source = self.sources.get(key)
        if source is None or source.stopping:
            source = factory()
            source.on_stopped = self._forget
            source.hub = self
            self.sources[key] = source
            source.start()
        if source._linger is not None:
            source._linger.cancel()
            source._linger = None
        source.users += 1
        return source

    def release(self, source: Source) -> None:
        """One user fewer; stop the source after the linger time when none is left."""
        source.users = max(0, source.users - 1)
        if source.users or source.stopping:
            return
        if source._linger is not None:
            source._linger.cancel()
        if self.linger <= 0:
            source.stop()
            return
        loop = asyncio.get_running_loop()
        source._linger = loop.call_later(self.linger, self._expire, source)

    def _expire(self, source: Source) -> None:
        source._linger = None
        if source.users == 0:
            source.stop()

    def _forget(self, source: Source) -> None:
        if self.sources.get(source.key) is source:
            del self.sources[source.key]

    # --- transcodes ----------------------------------------------------------------------
    def transcodes(self) -> list[Source]:
        return [s for s in list(self.sources.values()) if s.kind == "transcode" and not s.stopping]

    def acquire_transcode(self, base: RtspSource) -> Source:
        """A transcoder fed by ``base`` (shared); raises :class:`TranscodeLimit`."""
        key = (*base.key, "transcode")
        existing = self.sources.get(key)
        if existing is None or existing.stopping:
            running = self.transcodes()
            if len(running) >= self.max_transcodes:
                idle = [s for s in running if s.users == 0]
                if not idle:
                    raise TranscodeLimit(len(running), self.max_transcodes)
                idle[0].stop()  # a lingering transcode gives its slot away
                self._forget(idle[0])
        if self.transcode_factory is None or self.max_transcodes <= 0:
            raise TranscodeLimit(0, self.max_transcodes)
        factory = self.transcode_factory

        def make() -> Source:
            self.acquire(base.key, lambda: base)  # the transcoder is a user of its camera
            return factory(base)

        return self.acquire(key, make)

    def snapshot(self) -> list[dict[str, Any]]:
        """Plain figures about every source (safe to call from another thread)."""
        out = []
        for key, s in list(self.sources.items()):
            out.append(
                {
                    "key": "/".join(key),
                    "kind": s.kind,
                    "state": str(s.state),
                    "codec": s.codec,
                    "users": s.users,
                    "viewers": len(s.attachments),
                    "frames": s.frames_out,
                    "bytes_in": s.bytes_in,
                    "width": s.width,
                    "height": s.height,
                }
            )
        return out

    async def shutdown(self) -> None:
        for s in list(self.sources.values()):
            s.stop()
        for s in list(self.sources.values()):
            await s.wait_stopped()


hub = RelayHub()
