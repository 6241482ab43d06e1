"""The live media response: one multiplexed byte stream per browser session.

Runs on the server's event loop. Each channel (a tile, or the full view) is attached to
the shared relay of its camera stream; an H.265 stream goes through a transcoder, or the
camera's H.264 sub-stream when no transcode slot is free (or ``[live] h265_live =
"substream"``). Every ``[live] recheck_seconds`` the session and the permission of each
channel are checked again (``decide``, no audit); a channel that is no longer allowed
gets a ``denied`` meta message and stops, and the response ends when none is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings

from vigil.live import services
from vigil.live.relay import (
    MSG_PING,
    Attachment,
    RtspSource,
    Sink,
    Source,
    StreamTarget,
    TranscodeLimit,
    hub,
)
from vigil.live.transcode import TranscodeSource

log = logging.getLogger("vigil.live.streams")

PING_SECONDS = 5.0
COALESCE_SECONDS = 0.02
_configured = False


def configure_hub() -> None:
    """Apply ``[live]`` settings to the process-wide hub (once)."""
    global _configured  # noqa: PLW0603 - process-wide relay configuration
    if _configured:
        return
    cfg = settings.VIGIL.live
    hub.configure(linger=cfg.linger_seconds, max_transcodes=cfg.max_transcodes)
    hub.transcode_factory = lambda base: TranscodeSource(
        base, height=cfg.transcode_height, max_fps=cfg.transcode_max_fps
    )
    _configured = True


def _key(code: str, stream: str, target: StreamTarget) -> tuple[str, ...]:
    import hashlib

    user = target.credentials.username if target.credentials else ""
    digest = hashlib.sha256(f"{target.url}\0{user}".encode()).hexdigest()[:12]
    return (code, stream, digest)


@dataclass
class _Channel:
    spec: services.LiveChannel
    sink: Sink
    held: list[Source] = field(default_factory=list)
    attached: list[tuple[Source, Attachment]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def _acquire(self, stream: str, target: StreamTarget) -> RtspSource:
        key = _key(self.spec.code, stream, target)
        source = hub.acquire(key, lambda: RtspSource(key, target))
        assert isinstance(source, RtspSource)
        self.held.append(source)
        return source

    def _attach(self, source: Source, *, media: bool = True) -> Attachment:
        att = Attachment(self.sink, self.spec.channel, media=media)
        source.attach(att)
        self.attached.append((source, att))
        return att

    def _detach_all(self) -> None:
        for source, att in self.attached:
            source.detach(att)
        self.attached.clear()

    async def run(self) -> None:
        spec = self.spec
        ch = spec.channel
        base = self._acquire(spec.stream, spec.target)
        self._attach(base, media=False)  # status until the codec is known
        codec = await base.wait_codec()
        self._detach_all()
        if codec != "h265":
            self.sink.meta(ch, mode="direct")
            self._attach(base)
            return
        notice = "h265_substream"
        limit: dict[str, int] = {}
        if settings.VIGIL.live.h265_live == "transcode":
            try:
                tc = hub.acquire_transcode(base)
            except TranscodeLimit as exc:
                notice = "transcode_limit"
                limit = {"in_use": exc.in_use, "limit": exc.limit}
            else:
                self.held.append(tc)
                self.sink.meta(ch, mode="transcode", notice="transcoded")
                self._attach(tc)
                return
        if spec.fallback is not None:
            sub = self._acquire("sub", spec.fallback)
            self._attach(sub, media=False)
            sub_codec = await sub.wait_codec()
            self._detach_all()
            if sub_codec == "h264":
                self.sink.meta(ch, mode="substream", notice=notice, **limit)
                self._attach(sub)
                return
        self.sink.meta(ch, state="unavailable", notice=notice, **limit)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._detach_all()
        for source in self.held:
            hub.release(source)
        self.held.clear()


async def live_stream(grant: services.LiveGrant, session_key: str | None) -> AsyncIterator[bytes]:
    """The multiplexed live stream of ``grant`` (see :mod:`vigil.live.relay` for framing)."""
    configure_hub()
    log.info("live stream of %s started", ",".join(c.code for c in grant.channels))
    sink = Sink()
    channels = {c.camera_id: _Channel(c, sink) for c in grant.channels}
    for ch in channels.values():
        sink.meta(ch.spec.channel, state="connecting", code=ch.spec.code)
        ch.task = asyncio.get_running_loop().create_task(ch.run())
    recheck = settings.VIGIL.live.recheck_seconds
    next_check = time.monotonic() + recheck
    try:
        while channels:
            data = await sink.take(PING_SECONDS, COALESCE_SECONDS)
            yield data or bytes((MSG_PING, 0, 0, 0, 0, 0))
            if time.monotonic() >= next_check:
                allowed = await sync_to_async(services.recheck_live)(grant, session_key)
                for camera_id in [c for c in channels if c not in allowed]:
                    ch = channels.pop(camera_id)
                    ch.close()
                    sink.meta(ch.spec.channel, state="denied")
                    log.info("live view of %s ended: no longer allowed", ch.spec.code)
                next_check = time.monotonic() + recheck
        tail = await sink.take(0)
        if tail:
            yield tail
    finally:
        log.info("live stream of %s ended", ",".join(c.code for c in grant.channels))
        for ch in channels.values():
            ch.close()
        sink.close()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)
