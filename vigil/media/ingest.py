"""Camera ingest: RTSP -> frames -> segment files, with reconnection and gap reporting.

One :class:`CameraIngest` task per camera stream, many of them in one asyncio loop
(:class:`Recorder`). Per connection: OPTIONS, DESCRIBE, SETUP (TCP interleaved), PLAY;
then frames flow synchronously from the socket callback through the depacketizer into
the :class:`~vigil.media.segment.SegmentWriter` and any subscribers (live view,
analysis). Finishing a segment (fsync of file and directory) runs in a thread pool so
the loop never blocks on the disk; ``on_segment`` is called on the loop thread in
segment order once the file is durable.

Callbacks are plain synchronous callables and must be quick (the Django side hands
catalog writes to its own thread executor):

* ``on_segment(FinishedSegment)``
* ``on_gap(Gap)``: once when a gap opens (``end_utc is None``) and once when it closes
  (same ``gap.id``, ``end_utc`` set). Causes: ``camera_unreachable``,
  ``stream_stalled``, ``recorder_stopped``, ``authentication_failed``, ``stream_error``,
  ``storage_error``.
* ``on_state(code, "online" | "offline")``

Reconnection uses a short capped backoff (0.5, 1, 2, 2, ... s) so that recording resumes
within about 5 s of a camera coming back (up to one keyframe interval is also needed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from vigil.media.clock import StreamClock
from vigil.media.codecs import AacConfig, CodecError
from vigil.media.rtp import AacDepacketizer, Depacketizer, Frame, make_depacketizer
from vigil.media.rtsp import (
    AuthenticationFailed,
    CameraUnreachable,
    Credentials,
    InvalidStreamURL,
    MediaTrack,
    ProtocolError,
    RtspClient,
    RtspError,
    StreamStalled,
    UnsupportedStream,
    redact_url,
    split_credentials,
    validate_url,
)
from vigil.media.segment import FinishedSegment, SegmentFile, SegmentWriter, validate_camera_code

__all__ = [
    "CameraIngest",
    "CameraSpec",
    "Gap",
    "GapCause",
    "IngestState",
    "IngestStats",
    "Recorder",
    "StorageError",
]

log = logging.getLogger("vigil.media.ingest")

DEFAULT_BACKOFF = (0.5, 1.0, 2.0)
_FINISH_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _finish_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _FINISH_POOL  # noqa: PLW0603 - one lazily created pool per process
    if _FINISH_POOL is None:
        _FINISH_POOL = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="vigil-fsync")
    return _FINISH_POOL


class GapCause(StrEnum):
    """Why there is no recording for a stretch of time."""

    CAMERA_UNREACHABLE = "camera_unreachable"
    STREAM_STALLED = "stream_stalled"
    RECORDER_STOPPED = "recorder_stopped"
    AUTHENTICATION_FAILED = "authentication_failed"
    STREAM_ERROR = "stream_error"
    STORAGE_ERROR = "storage_error"


class IngestState(StrEnum):
    """Camera recording state reported through ``on_state``."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass
class Gap:
    """A stretch without recording. ``end_utc`` is None while it is still open."""

    camera_code: str
    start_utc: float
    cause: GapCause
    detail: str = ""
    end_utc: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def duration(self) -> float | None:
        """Seconds, once closed."""
        return None if self.end_utc is None else self.end_utc - self.start_utc


@dataclass
class IngestStats:
    """Live figures for one camera stream (read them from the loop thread)."""

    state: IngestState = IngestState.OFFLINE
    fps: float = 0.0  # measured over the last second or so
    bitrate: float = 0.0  # bit/s, same window
    frames: int = 0
    bytes: int = 0
    segments: int = 0
    last_frame_mono: float | None = None
    last_frame_utc: float | None = None
    connected_since_utc: float | None = None
    reconnects: deque[float] = field(default_factory=lambda: deque(maxlen=100))  # UTC of each PLAY
    lost_packets: int = 0
    dropped_frames: int = 0
    last_error: str = ""
    codec: str = ""
    width: int = 0
    height: int = 0
    has_audio: bool = False


FrameSubscriber = Callable[[Frame], None]


class StorageError(OSError):
    """Writing a segment failed (disk full, volume unmounted, permissions)."""


class CameraIngest:
    """Records one camera stream until :meth:`stop` (see module docstring)."""

    def __init__(
        self,
        code: str,
        url: str,
        volume: str | Path,
        *,
        credentials: Credentials | None = None,
        on_segment: Callable[[FinishedSegment], None] | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        on_state: Callable[[str, IngestState], None] | None = None,
        segment_duration: float = 10.0,
        fragment_duration: float = 1.0,
        stall_timeout: float = 5.0,
        connect_timeout: float = 3.0,
        response_timeout: float = 5.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        record_audio: bool = True,
        floor_utc: float | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.code = validate_camera_code(code)
        try:
            clean, embedded = split_credentials(url)
        except ValueError:  # reported by run() as an invalid URL, not raised here
            clean, embedded = url, None
        self.url = clean
        self.credentials = credentials or embedded
        self.volume = Path(volume)
        self.on_segment = on_segment
        self.on_gap = on_gap
        self.on_state = on_state
        self.segment_duration = segment_duration
        self.fragment_duration = fragment_duration
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.backoff = tuple(backoff) or DEFAULT_BACKOFF
        self.record_audio = record_audio
        self._wall = wall
        self._mono = mono
        self.stats = IngestStats()
        self.audio_config: AacConfig | None = None
        self._subscribers: list[FrameSubscriber] = []
        self._stopping = asyncio.Event()
        self._writer: SegmentWriter | None = None
        self._client: RtspClient | None = None
        self._last_end_utc: float | None = floor_utc  # never start a segment before this
        self._recorded_end_utc: float | None = None  # end of this run's last segment
        self._run_start_utc: float | None = None
        self._gap: Gap | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._offsets = [0, 0]
        self._playing = False
        self._preplay: list[Frame] = []
        self._depacks: list[Depacketizer] = []
        self._window_start = 0.0
        self._window_frames = 0
        self._window_bytes = 0
        self._storage_error: OSError | None = None

    # --- public -------------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        """URL for display (no password)."""
        return redact_url(self.url)

    @property
    def open_gap(self) -> Gap | None:
        """The gap currently open, if any."""
        return self._gap

    def subscribe(self, callback: FrameSubscriber) -> Callable[[], None]:
        """Receive every frame (video track 0, audio track 1); returns an unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def stop(self) -> None:
        """Ask :meth:`run` to finish the open segment and return."""
        self._stopping.set()
        if self._client is not None and not self._playing:
            self._client.close()  # abort a connection attempt; a playing one gets TEARDOWN

    async def run(self) -> None:
        """Record until :meth:`stop`; never raises for camera problems."""
        attempt = 0
        self._run_start_utc = self._wall()
        try:
            validate_url(self.url)
        except InvalidStreamURL as exc:
            self.stats.last_error = str(exc)
            log.error("camera %s: %s", self.code, exc)
            self._open_gap(self._gap_start(), GapCause.STREAM_ERROR, str(exc))
            await self._stopping.wait()
            self._stop_gaps()
            return
        while not self._stopping.is_set():
            recorded_before = self.stats.frames
            cause = GapCause.CAMERA_UNREACHABLE
            detail = ""
            try:
                await self._session()
                detail = "connection closed"
            except AuthenticationFailed as exc:
                cause, detail = GapCause.AUTHENTICATION_FAILED, str(exc)
            except StreamStalled as exc:
                cause, detail = GapCause.STREAM_STALLED, str(exc)
            except CameraUnreachable as exc:
                cause, detail = GapCause.CAMERA_UNREACHABLE, str(exc)
            except (UnsupportedStream, ProtocolError, CodecError) as exc:
                cause, detail = GapCause.STREAM_ERROR, str(exc)
            except RtspError as exc:  # pragma: no cover - all subclasses handled above
                cause, detail = GapCause.STREAM_ERROR, str(exc)
            except StorageError as exc:
                cause, detail = GapCause.STORAGE_ERROR, str(exc)
            except OSError as exc:
                cause, detail = GapCause.CAMERA_UNREACHABLE, f"socket error: {exc}"
            await self._end_session()
            if self._stopping.is_set():
                break
            self.stats.last_error = detail
            self._set_state(IngestState.OFFLINE)
            if self._gap is None:
                start = self._gap_start()
                self._open_gap(start, cause, detail)
                log.warning("camera %s: recording interrupted (%s): %s", self.code, cause, detail)
            attempt = 0 if self.stats.frames > recorded_before else attempt + 1
            delay = (
                self.backoff[min(attempt, len(self.backoff) - 1)] if attempt else self.backoff[0]
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not wait_for: 3.11 can swallow a cancel
                    await self._stopping.wait()
        self._stop_gaps()
        if self._finishing is not None:
            await self._finishing

    # --- session ------------------------------------------------------------------------
    async def _session(self) -> None:
        client = RtspClient(
            self.url,
            self.credentials,
            connect_timeout=self.connect_timeout,
            response_timeout=self.response_timeout,
        )
        self._client = client
        await client.connect()
        if self._stopping.is_set():
            return
        await client.options()
        desc = await client.describe()
        video = desc.first("video", ("H264", "H265", "HEVC"))
        if video is None:
            found = ", ".join(f"{t.media}/{t.encoding or t.payload_type}" for t in desc.tracks)
            raise UnsupportedStream(f"no H.264/H.265 video track in the stream (found: {found})")
        audio = desc.first("audio", ("MPEG4-GENERIC",)) if self.record_audio else None
        video_dp = make_depacketizer(
            video.encoding, track=0, fmtp=video.fmtp, on_frame=self._on_frame
        )
        depacks = [video_dp]
        audio_dp: AacDepacketizer | None = None
        if audio is not None:
            try:
                dp = make_depacketizer(
                    audio.encoding, track=1, fmtp=audio.fmtp, on_frame=self._on_frame
                )
                assert isinstance(dp, AacDepacketizer)
                audio_dp = dp
            except CodecError as exc:
                log.info("camera %s: audio not recorded: %s", self.code, exc)
                audio = None
        self._playing = False
        self._preplay = []
        self._depacks = depacks
        await client.setup(video, video_dp.push)
        if audio is not None and audio_dp is not None:
            await client.setup(audio, audio_dp.push)
            depacks.append(audio_dp)
        self.audio_config = audio_dp.config if audio_dp is not None else None
        self._writer = SegmentWriter(
            self.volume,
            self.code,
            clock=StreamClock(90000, wall=self._wall, mono=self._mono, name=self.code),
            audio=self.audio_config,
            target_duration=self.segment_duration,
            fragment_duration=self.fragment_duration,
            floor_utc=self._last_end_utc,
        )
        play_mono = self._mono()
        await client.play()
        # Align tracks on the RTP-Info rtptime of PLAY (same instant for all tracks).
        self._offsets = [0, 0]
        aligned: list[tuple[Depacketizer, MediaTrack]] = [(video_dp, video)]
        if audio_dp is not None and audio is not None:
            aligned.append((audio_dp, audio))
        for dp, track in aligned:
            _seq, rtptime = client.rtp_info_for(track)
            first = dp.extender.base  # first packet's timestamp, if one arrived
            if rtptime is not None:
                if first is None:
                    dp.extender.set_base(rtptime)
                else:
                    delta = (first - rtptime) & 0xFFFFFFFF
                    if delta & 0x80000000:
                        delta -= 0x100000000
                    # Only trust RTP-Info when it is close to the first packet (< 10 s).
                    if abs(delta) < 10 * dp.clock_rate:
                        self._offsets[dp.track] = delta
        self._playing = True
        for frame in self._preplay:
            self._on_frame(frame)
        self._preplay = []
        self.stats.connected_since_utc = self._wall()
        self.stats.reconnects.append(self._wall())
        self.stats.codec = video.encoding.lower().replace("hevc", "h265")
        self.stats.has_audio = audio is not None
        log.info("camera %s: playing %s", self.code, client.display_url)
        self.stats.last_frame_mono = play_mono
        check = min(0.5, self.stall_timeout / 4)
        closed = client.closed
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(check):
                    await asyncio.shield(closed)
            if closed.done():
                if self._stopping.is_set():
                    return
                raise client.close_reason or CameraUnreachable("connection closed by the camera")
            if self._storage_error is not None:
                raise StorageError(f"cannot write recordings: {self._storage_error}")
            last = self.stats.last_frame_mono or play_mono
            if self._mono() - last > self.stall_timeout:
                raise StreamStalled(f"no video frame for {self.stall_timeout:g} s")

    async def _end_session(self) -> None:
        writer = self._writer
        self._writer = None
        if self._storage_error is not None and writer is not None and writer.current is not None:
            with contextlib.suppress(OSError):
                seg = writer.close()
                if seg is not None:
                    self._last_end_utc = self._recorded_end_utc = seg.end_utc
                    self._finish(seg)
            writer = None
        self._storage_error = None
        if writer is not None:
            seg = writer.close()
            if seg is not None:
                self._last_end_utc = self._recorded_end_utc = seg.end_utc
                self._finish(seg)
        client = self._client
        self._client = None
        for dp in self._depacks:
            self.stats.lost_packets += dp.lost
            self.stats.dropped_frames += dp.dropped
        self._depacks = []
        if client is not None:
            if self._stopping.is_set():
                with contextlib.suppress(RtspError, OSError):
                    await client.teardown()
            client.close()

    # --- frames -------------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        if not self._playing:
            self._preplay.append(frame)
            return
        if frame.track < 2:
            frame.ticks += self._offsets[frame.track]
        stats = self.stats
        now = self._mono()
        size = len(frame.data)
        stats.bytes += size
        self._window_bytes += size
        if frame.track == 0:
            stats.frames += 1
            self._window_frames += 1
            stats.last_frame_mono = now
            elapsed = now - self._window_start
            if elapsed >= 1.0:
                if self._window_start:
                    stats.fps = self._window_frames / elapsed
                    stats.bitrate = self._window_bytes * 8 / elapsed
                self._window_start = now
                self._window_frames = 0
                self._window_bytes = 0
        writer = self._writer
        if writer is not None and self._storage_error is None:
            opened = writer.current is None
            try:
                done = writer.write(frame)
            except OSError as exc:  # disk full, volume gone: stop this session cleanly
                log.error("camera %s: cannot write segment: %s", self.code, exc)
                self._storage_error = exc
                return
            if done is not None:
                self._last_end_utc = self._recorded_end_utc = done.end_utc
                self._finish(done)
            if opened and writer.current is not None:
                self._segment_opened(writer.current)
            if frame.track == 0 and writer.clock.anchored:
                stats.last_frame_utc = writer.clock.to_utc(frame.ticks)
        for sub in self._subscribers:
            try:
                sub(frame)
            except Exception:
                log.exception("camera %s: frame subscriber failed; unsubscribing it", self.code)
                self._subscribers.remove(sub)
                break

    def _segment_opened(self, seg: SegmentFile) -> None:
        params = seg.params
        self.stats.width, self.stats.height = params.width, params.height
        self._set_state(IngestState.ONLINE)
        gap = self._gap
        if gap is not None:
            self._gap = None
            gap.end_utc = max(seg.start_utc, gap.start_utc)
            self._emit_gap(gap)
            log.info(
                "camera %s: recording resumed after %.1f s (%s)",
                self.code,
                gap.end_utc - gap.start_utc,
                gap.cause,
            )

    def _finish(self, seg: SegmentFile) -> None:
        previous = self._finishing
        loop = asyncio.get_running_loop()

        async def finish() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                result = await loop.run_in_executor(_finish_pool(), seg.finish)
            except OSError:
                log.exception("camera %s: could not finish %s", self.code, seg.path)
                return
            self.stats.segments += 1
            if self.on_segment is not None:
                try:
                    self.on_segment(result)
                except Exception:
                    log.exception("camera %s: on_segment callback failed", self.code)

        self._finishing = loop.create_task(finish())

    # --- gaps and state -------------------------------------------------------------------
    def _gap_start(self) -> float:
        """End of this run's last segment, else when this run started (never before the floor)."""
        if self._recorded_end_utc is not None:
            return self._recorded_end_utc
        start = self._run_start_utc if self._run_start_utc is not None else self._wall()
        return max(start, self._last_end_utc) if self._last_end_utc is not None else start

    def _open_gap(self, start: float, cause: GapCause, detail: str) -> None:
        self._gap = Gap(self.code, start, cause, detail)
        self._emit_gap(self._gap)

    def _emit_gap(self, gap: Gap) -> None:
        if self.on_gap is not None:
            try:
                self.on_gap(dataclasses.replace(gap))
            except Exception:
                log.exception("camera %s: on_gap callback failed", self.code)

    def _stop_gaps(self) -> None:
        now = self._wall()
        start = self._recorded_end_utc if self._recorded_end_utc is not None else now
        if self._gap is not None:
            gap = self._gap
            gap.end_utc = max(now, gap.start_utc)
            self._emit_gap(gap)
            start = gap.end_utc
        self._gap = None
        self._set_state(IngestState.OFFLINE)
        self._emit_gap(Gap(self.code, start, GapCause.RECORDER_STOPPED, "recorder stopped"))

    def _set_state(self, state: IngestState) -> None:
        if self.stats.state == state:
            return
        self.stats.state = state
        if self.on_state is not None:
            try:
                self.on_state(self.code, state)
            except Exception:
                log.exception("camera %s: on_state callback failed", self.code)


@dataclass(frozen=True)
class CameraSpec:
    """What the recorder needs to know about one camera stream."""

    code: str
    url: str
    credentials: Credentials | None = None
    record_audio: bool = True


class Recorder:
    """Runs many :class:`CameraIngest` tasks in one event loop until SIGTERM/SIGINT."""

    def __init__(
        self,
        cameras: Sequence[CameraSpec],
        volume: str | Path,
        *,
        on_segment: Callable[[FinishedSegment], None] | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        on_state: Callable[[str, IngestState], None] | None = None,
        **options: object,
    ) -> None:
        self.volume = Path(volume)
        self.ingests: dict[str, CameraIngest] = {}
        for cam in cameras:
            self.ingests[cam.code] = CameraIngest(
                cam.code,
                cam.url,
                self.volume,
                credentials=cam.credentials,
                record_audio=cam.record_audio,
                on_segment=on_segment,
                on_gap=on_gap,
                on_state=on_state,
                **options,  # type: ignore[arg-type]
            )
        self._stopped = False

    def stop(self) -> None:
        """Stop every camera (finishing open segments)."""
        self._stopped = True
        for ingest in self.ingests.values():
            ingest.stop()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Run all cameras; returns after :meth:`stop` (or SIGTERM/SIGINT) once every
        open segment is finished."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
        try:
            tasks = [loop.create_task(i.run(), name=f"ingest-{c}") for c, i in self.ingests.items()]
            if self._stopped:
                self.stop()
            await asyncio.gather(*tasks)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
