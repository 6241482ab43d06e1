"""``vigil analyze``: every in-service camera's sub-stream, analysed live.

Why a process of its own and not inside the recorder node (see
docs/decisions/0013-analysis-in-its-own-process.md): recording the main streams is the
legal duty (Art. 5) and must not wait on decoding; the two never share a connection
anyway (the recorder takes the main stream, analysis the sub-stream); a crash in native
decoding code cannot take recording down; and analysis then uses the second core
instead of competing with the recorder's event loop for one interpreter.

Inside the process:

* one asyncio loop runs an RTSP session per camera (the media engine's
  :class:`~vigil.media.rtsp.RtspClient` and depacketizer, video track only) with the
  recorder's reconnect backoff, and maps RTP time to UTC with a
  :class:`~vigil.media.clock.StreamClock`;
* access units go to N analysis threads (one per core by default), each owning a fixed
  set of cameras, so a camera's decoder and analyser are only ever touched by one
  thread. FFmpeg decoding and OpenCV release the GIL, so threads use both cores;
* a thread that falls behind (a frame older than ``MAX_LAG`` seconds when its turn
  comes) skips to the next keyframe instead of lagging further; skipped frames are
  counted and shown as "dropped";
* results go to one database thread, in order: motion events, tamper alerts (through
  :mod:`vigil.alerts.services`), quality samples, per-camera status every 5 s, the
  camera-day quality summary every 10 minutes;
* every few seconds the settings (masks, zones, switches, "accept the new view") and
  the set of in-service cameras are re-read, so a camera put under maintenance stops
  being watched (no tamper alarms while a technician works on it);
* the learned state of each camera (the tamper reference and last good snapshot) is
  saved to ``$VIGIL_DATA_DIR/analytics/state/<code>.npz`` every few minutes and on
  shutdown, and loaded on start: a camera covered while analysis was down is caught at
  once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from vigil.analytics import services
from vigil.analytics.models import AnalysisStatus, CameraAnalysis, MotionEvent
from vigil.analytics.pipeline import CameraPipeline, PipelineOutput
from vigil.media.clock import StreamClock
from vigil.media.rtp import Frame, make_depacketizer
from vigil.media.rtsp import (
    Credentials,
    RtspClient,
    RtspError,
    StreamStalled,
    UnsupportedStream,
)
from vigil.school.models import Camera
from vigil.school.services import stream_credentials
from vigil.vision.imageops import encode_jpeg
from vigil.vision.pipeline import AnalyserConfig
from vigil.vision.quality import CameraSpec

log = logging.getLogger("vigil.analytics")
T = TypeVar("T")

BACKOFF = (0.5, 1.0, 2.0, 2.0, 5.0)
STALL_SECONDS = 5.0
MAX_LAG = 2.0  # seconds behind before a thread skips to the next keyframe
MAX_QUEUED = 150  # frames waiting per camera before the network side drops
STATUS_SECONDS = 5.0
REFRESH_SECONDS = 5.0
SUMMARY_SECONDS = 600.0
PURGE_SECONDS = 3600.0
STARTUP_GRACE = 60.0


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class CameraRun:
    """One camera being analysed. Fields are owned by the thread named beside them."""

    camera: Camera
    url: str
    credentials: Credentials | None
    pipeline: CameraPipeline  # worker
    worker: int
    settings_seen: datetime | None  # loop
    accepted_seen: datetime | None  # loop
    task: asyncio.Task[None] | None = None  # loop
    online: bool = False  # loop
    last_error: str = ""  # loop
    last_arrival: float = 0.0  # loop (monotonic)
    need_key: bool = False  # loop: dropped on the network side, wait for a keyframe
    enqueued: int = 0  # loop
    dequeued: int = 0  # worker
    # worker-owned counters, read by the loop for status
    analysed: int = 0
    dropped: int = 0
    skipping: bool = False
    lag_sum: float = 0.0
    lag_n: int = 0
    lag_max: float = 0.0
    last_frame_utc: float | None = None
    want_view: bool = False
    # db-thread-owned: engine event seq -> MotionEvent row id
    event_ids: dict[int, int] = field(default_factory=dict)
    # loop-owned status window
    window_analysed: int = 0
    window_start: float = field(default_factory=time.monotonic)
    stopped: bool = False

    @property
    def code(self) -> str:
        return self.camera.code


class Worker(threading.Thread):
    """Decodes and analyses the frames of its cameras, in arrival order."""

    def __init__(self, node: AnalysisNode, index: int) -> None:
        super().__init__(name=f"vigil-analysis-{index}", daemon=True)
        self.node = node
        self.index = index
        self.inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.busy_seconds = 0.0

    def run(self) -> None:
        import cv2

        cv2.setNumThreads(1)
        while True:
            item = self.inbox.get()
            if item is None:
                return
            t0 = time.thread_time()
            try:
                self._handle(item)
            except Exception:
                log.exception("analysis of %s failed", getattr(item[1], "code", "?"))
            self.busy_seconds += time.thread_time() - t0

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, run = item[0], item[1]
        if kind == "frame":
            self._frame(run, item[2], item[3], item[4])
        elif kind == "tick":
            events = run.pipeline.check_signal(item[2])
            if events:
                self.node.sink(run, PipelineOutput(tamper=events))
        elif kind == "restart":
            out = run.pipeline.restart_stream()
            run.skipping = False
            if not out.empty:
                self.node.sink(run, out)
        elif kind == "config":
            run.pipeline.reconfigure(item[2])
        elif kind == "accept":
            events = run.pipeline.accept_view()
            if events:
                self.node.sink(run, PipelineOutput(tamper=events))
        elif kind == "save":
            self._save(run)
        elif kind == "close":
            out = run.pipeline.restart_stream()
            if not out.empty:
                self.node.sink(run, out)
            self._save(run)

    def _frame(self, run: CameraRun, frame: Frame, ts: float, arrived: float) -> None:
        run.dequeued += 1
        age = time.monotonic() - arrived
        if run.skipping or age > MAX_LAG:
            if frame.keyframe and age <= MAX_LAG:
                run.skipping = False
            else:
                run.skipping = True
                run.dropped += 1
                return
        if run.want_view:
            run.pipeline.capture_view = True
            run.want_view = False
        out = run.pipeline.feed(frame.data, ts, frame.keyframe, frame.params)
        if not out.frames:
            return
        lag = time.monotonic() - arrived
        run.analysed += out.frames
        run.lag_sum += lag
        run.lag_n += 1
        run.lag_max = max(run.lag_max, lag)
        run.last_frame_utc = ts
        view = run.pipeline.take_view()
        if view is not None:
            self.node.write_file(services.view_path(run.code), encode_jpeg(view, 70, max_width=640))
        if not out.empty:
            self.node.sink(run, out)

    def _save(self, run: CameraRun) -> None:
        try:
            _atomic_write(services.state_dir() / f"{run.code}.npz", run.pipeline.save_state())
        except OSError as exc:
            log.error("camera %s: cannot save analysis state: %s", run.code, exc)


class AnalysisNode:
    """Analyses the sub-streams of a set of cameras until stopped."""

    def __init__(
        self,
        select: Callable[[], list[Camera]],
        *,
        fps: float | None = None,
        threads: int | None = None,
        keyframes_only: bool = False,
        stats_file: Path | None = None,
        purge: bool = True,
    ) -> None:
        cfg = settings.VIGIL.analytics
        self.purge = purge  # one process of a shared analysis purges for all
        self.select = select
        self.fps = float(fps or cfg.fps)
        self.threads = max(1, threads if threads is not None else cfg.threads)
        self.keyframes_only = keyframes_only
        self.stats_file = stats_file
        self.runs: dict[str, CameraRun] = {}
        self.workers = [Worker(self, i) for i in range(self.threads)]
        self.db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vigil-analysis-db")
        self.stopping = asyncio.Event()
        self.node_name = f"{socket.gethostname()}:{os.getpid()}"
        self.started = time.monotonic()
        self.started_cpu = _cpu_seconds()
        self._next_worker = 0
        self._last_day = timezone.localdate()

    # ------------------------------------------------------------------ database thread
    def _db(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        def call() -> T:
            close_old_connections()
            try:
                return fn(*args)
            except Exception:
                log.exception("analysis write failed: %s", getattr(fn, "__name__", fn))
                raise

        return self.db.submit(call)

    def sink(self, run: CameraRun, out: PipelineOutput) -> None:
        """Hand results to the database thread (called from a worker)."""
        self._db(self._store, run, out)

    def write_file(self, path: Path, data: bytes) -> None:
        self.db.submit(_atomic_write, path, data)

    def _store(self, run: CameraRun, out: PipelineOutput) -> None:
        store_output(run.camera, out, run.event_ids)

    # ------------------------------------------------------------------ cameras
    def _make_run(self, camera: Camera, row: CameraAnalysis) -> CameraRun:
        url = camera.sub_url
        keyframes_only = self.keyframes_only
        config = services.analyser_config(camera, row)
        if not url:
            # No sub-stream: the main stream's keyframes are enough for tamper and
            # quality checks; motion at one frame every GOP would be meaningless.
            url = camera.main_url
            keyframes_only = True
            config = AnalyserConfig(
                motion=config.motion,
                quality_interval=config.quality_interval,
                spec=CameraSpec(camera.width, camera.height),
                motion_enabled=False,
                tamper_enabled=config.tamper_enabled,
            )
            log.warning("camera %s has no sub-stream: analysing main-stream keyframes", camera.code)
        state = None
        path = services.state_dir() / f"{camera.code}.npz"
        with contextlib.suppress(OSError):
            state = path.read_bytes()
        try:
            pipeline = CameraPipeline(
                config, state=state, fps=self.fps, keyframes_only=keyframes_only
            )
        except Exception:  # unreadable state: start learning afresh
            log.warning("camera %s: saved analysis state unusable, relearning", camera.code)
            pipeline = CameraPipeline(config, fps=self.fps, keyframes_only=keyframes_only)
        username, password = stream_credentials(camera)
        worker = self._next_worker % self.threads
        self._next_worker += 1
        return CameraRun(
            camera=camera,
            url=url,
            credentials=Credentials(username, password) if (username or password) else None,
            pipeline=pipeline,
            worker=worker,
            settings_seen=row.updated_at,
            accepted_seen=row.view_accepted_at,
        )

    def _load(self) -> tuple[list[Camera], dict[int, CameraAnalysis]]:
        close_old_connections()
        cameras = self.select()
        rows = {r.camera_id: r for r in CameraAnalysis.objects.filter(camera__in=cameras)}
        for cam in cameras:
            if cam.pk not in rows:
                rows[cam.pk] = services.settings_for(cam)
        return cameras, rows

    def prepare(self) -> None:
        cameras, rows = self._load()
        # Events left open by a previous run that did not stop cleanly end at their peak.
        MotionEvent.objects.filter(camera__in=cameras, end__isnull=True).update(end=F("peak_at"))
        for cam in cameras:
            self.runs[cam.code] = self._make_run(cam, rows[cam.pk])
        if not self.runs:
            log.warning("no in-service camera to analyse")

    def _post(self, run: CameraRun, *item: Any) -> None:
        self.workers[run.worker].inbox.put((item[0], run, *item[1:]))

    # ------------------------------------------------------------------ network side
    def _on_frame(self, run: CameraRun, clock: StreamClock, frame: Frame) -> None:
        now = time.monotonic()
        run.last_arrival = now
        ts = clock.observe(frame.ticks)
        if run.need_key and not frame.keyframe:
            return
        if run.enqueued - run.dequeued >= MAX_QUEUED:
            run.need_key = True
            run.dropped += 1
            return
        run.need_key = False
        run.enqueued += 1
        self._post(run, "frame", frame, ts, now)

    async def _session(self, run: CameraRun) -> None:
        client = RtspClient(run.url, run.credentials, connect_timeout=3.0, response_timeout=5.0)
        try:
            await client.connect()
            await client.options()
            desc = await client.describe()
            video = desc.first("video", ("H264", "H265", "HEVC"))
            if video is None:
                raise UnsupportedStream("no H.264/H.265 video track in the sub-stream")
            clock = StreamClock(video.clock_rate or 90000, name=run.code)
            depack = make_depacketizer(
                video.encoding,
                track=0,
                fmtp=video.fmtp,
                on_frame=lambda f: self._on_frame(run, clock, f),
            )
            await client.setup(video, depack.push)
            run.last_arrival = time.monotonic()
            await client.play()
            run.online = True
            run.last_error = ""
            closed = client.closed
            while not self.stopping.is_set() and not run.stopped:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):  # not wait_for: 3.11 can swallow a cancel
                        await asyncio.shield(closed)
                if closed.done():
                    raise client.close_reason or RtspError("connection closed by the camera")
                if time.monotonic() - run.last_arrival > STALL_SECONDS:
                    raise StreamStalled(f"no video frame for {STALL_SECONDS:g} s")
        finally:
            if self.stopping.is_set() or run.stopped:
                with contextlib.suppress(RtspError, OSError):
                    await client.teardown()
            client.close()

    async def _stream(self, run: CameraRun) -> None:
        attempt = 0
        while not self.stopping.is_set() and not run.stopped:
            analysed_before = run.analysed
            try:
                await self._session(run)
            except (RtspError, OSError) as exc:
                run.last_error = str(exc)[:500]
                log.info("camera %s: sub-stream interrupted: %s", run.code, exc)
            finally:
                if run.online:
                    run.online = False
                    self._post(run, "restart")
            if self.stopping.is_set() or run.stopped:
                break
            attempt = 0 if run.analysed > analysed_before else attempt + 1
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stopping.wait()

    def _start(self, run: CameraRun) -> None:
        run.task = asyncio.get_running_loop().create_task(
            self._stream(run), name=f"analyse-{run.code}"
        )

    # ------------------------------------------------------------------ periodic work
    def _status_rows(self) -> list[AnalysisStatus]:
        now = time.monotonic()
        rows = []
        for run in self.runs.values():
            elapsed = max(1e-3, now - run.window_start)
            fps = (run.analysed - run.window_analysed) / elapsed
            run.window_analysed, run.window_start = run.analysed, now
            lag = run.lag_sum / run.lag_n if run.lag_n else 0.0
            rows.append(
                AnalysisStatus(
                    camera=run.camera,
                    online=run.online,
                    fps=round(fps, 2),
                    lag_ms=round(lag * 1000, 1),
                    dropped=run.dropped,
                    reference_ready=run.pipeline.reference_ready,
                    last_frame_at=(
                        datetime.fromtimestamp(run.last_frame_utc, tz=UTC)
                        if run.last_frame_utc
                        else None
                    ),
                    last_error=run.last_error[:500],
                    node=self.node_name,
                    updated_at=timezone.now(),
                )
            )
        return rows

    def _refresh(self) -> tuple[list[Camera], dict[int, CameraAnalysis]]:
        """Database thread: the cameras to analyse now and their settings."""
        return self._load()

    def _apply_refresh(self, cameras: list[Camera], rows: dict[int, CameraAnalysis]) -> None:
        wanted = {c.code: c for c in cameras}
        for code in [c for c in self.runs if c not in wanted]:
            gone = self.runs.pop(code)
            log.info("camera %s is no longer in service: analysis stops", code)
            gone.stopped = True
            self._post(gone, "close")
            self._db(_mark_offline, gone.camera)
        for code, cam in wanted.items():
            row = rows[cam.pk]
            run = self.runs.get(code)
            if run is None:
                run = self._make_run(cam, row)
                self.runs[code] = run
                self._start(run)
                log.info("camera %s: analysis starts", code)
                continue
            if row.view_accepted_at and row.view_accepted_at != run.accepted_seen:
                run.accepted_seen = row.view_accepted_at
                self._post(run, "accept")
                log.info("camera %s: new view accepted, relearning the reference", code)
            if row.updated_at != run.settings_seen:
                run.settings_seen = row.updated_at
                self._post(run, "config", services.analyser_config(cam, row))
                run.want_view = True

    def _summaries(self, cameras: list[Camera], rollover: bool) -> None:
        today = timezone.localdate()
        for cam in cameras:
            if rollover:
                services.summarize_day(cam, today - timedelta(days=1))
            services.summarize_day(cam, today)

    def write_stats(self) -> None:
        if self.stats_file is None:
            return
        elapsed = time.monotonic() - self.started
        lags = [r.lag_max for r in self.runs.values()]
        data = {
            "elapsed_s": round(elapsed, 1),
            "cpu_s": round(_cpu_seconds() - self.started_cpu, 2),
            "cameras": len(self.runs),
            "online": sum(1 for r in self.runs.values() if r.online),
            "analysed": sum(r.analysed for r in self.runs.values()),
            "dropped": sum(r.dropped for r in self.runs.values()),
            "lag_mean_ms": round(
                1000
                * sum(r.lag_sum for r in self.runs.values())
                / max(1, sum(r.lag_n for r in self.runs.values())),
                1,
            ),
            "lag_max_ms": round(1000 * max(lags, default=0.0), 1),
            "worker_busy_s": [round(w.busy_seconds, 2) for w in self.workers],
            "per_camera": {r.code: r.analysed for r in self.runs.values()},
        }
        _atomic_write(self.stats_file, json.dumps(data).encode())

    async def _periodic(self) -> None:
        loop = asyncio.get_running_loop()
        state_every = settings.VIGIL.analytics.state_save_minutes * 60.0
        now = loop.time()
        next_status = now + STATUS_SECONDS
        next_refresh = now + REFRESH_SECONDS
        next_summary = now + 60.0
        next_purge = now + 30.0
        next_save = now + state_every
        refresh: concurrent.futures.Future[Any] | None = None
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.stopping.wait()
            if self.stopping.is_set():
                break
            wall = time.time()
            settled = time.monotonic() - self.started >= STARTUP_GRACE
            for run in self.runs.values():
                # Video loss counts from a camera's first frame in this process, or
                # from the end of the start-up grace (cameras and the simulator may
                # come up a little after us; the recorder reports "offline" anyway).
                if settled or run.last_frame_utc is not None:
                    self._post(run, "tick", wall)
            now = loop.time()
            if now >= next_status:
                next_status = now + STATUS_SECONDS
                self._db(services.write_status, self._status_rows())
                self.write_stats()
            if refresh is not None and refresh.done():
                if refresh.exception() is None:
                    self._apply_refresh(*refresh.result())
                refresh = None
            if refresh is None and now >= next_refresh:
                next_refresh = now + REFRESH_SECONDS
                refresh = self._db(self._refresh)
            if now >= next_summary:
                next_summary = now + SUMMARY_SECONDS
                today = timezone.localdate()
                rollover = today != self._last_day
                self._last_day = today
                self._db(self._summaries, [r.camera for r in self.runs.values()], rollover)
            if now >= next_purge and self.purge:
                next_purge = now + PURGE_SECONDS
                self._db(services.purge)
            if now >= next_save:
                next_save = now + state_every
                for run in self.runs.values():
                    self._post(run, "save")

    # ------------------------------------------------------------------ run
    def stop(self) -> None:
        self.stopping.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        for w in self.workers:
            w.start()
        for run in self.runs.values():
            run.want_view = True
            self._start(run)
        periodic = loop.create_task(self._periodic())
        log.info(
            "analysing %d camera(s) at %g fps on %d thread(s)",
            len(self.runs),
            self.fps,
            self.threads,
        )
        try:
            await self.stopping.wait()
            tasks = [r.task for r in self.runs.values() if r.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.stopping.set()
            await periodic
            for run in self.runs.values():
                self._post(run, "close")
            for w in self.workers:
                w.inbox.put(None)
            for w in self.workers:
                await loop.run_in_executor(None, w.join)
            self._db(services.write_status, self._status_rows())
            self._db(self._summaries, [r.camera for r in self.runs.values()], False)
            self._db(self._mark_stopped).result()
            self.write_stats()
            self.db.shutdown(wait=True)

    def _mark_stopped(self) -> None:
        AnalysisStatus.objects.filter(camera__in=[r.camera for r in self.runs.values()]).update(
            online=False, node=""
        )
        connection.close()


def store_output(camera: Camera, out: PipelineOutput, event_ids: dict[int, int]) -> None:
    """Persist what a camera's pipeline produced (``event_ids`` maps the engine's motion
    event numbers to stored rows between the start and the end of an event)."""
    for upd in out.motion:
        ev = upd.event
        if upd.kind == "start":
            event_ids[ev.seq] = services.motion_started(camera, ev)
        else:
            services.motion_ended(camera, event_ids.pop(ev.seq, None), ev)
    for tev in out.tamper:
        if tev.kind == "raised":
            pk, created = services.tamper_raised(camera, tev.alert)
            log.warning(
                "camera %s: tamper %s (%s) -> alert #%d%s",
                camera.code,
                tev.alert.cause,
                tev.alert.severity,
                pk,
                "" if created else " (already open)",
            )
        else:
            services.tamper_cleared(camera, tev.alert)
            log.info("camera %s: tamper %s condition ended", camera.code, tev.alert.cause)
    for sample in out.quality:
        services.quality_sampled(camera, sample, sample.ts)


def _mark_offline(camera: Camera) -> None:
    AnalysisStatus.objects.filter(camera=camera).update(online=False, node="")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
