"""The recorder node: runs the media engine for a recorder's cameras and keeps the
catalog, gaps, health and heartbeat in the database.

The engine calls back on its event loop; every database write is handed to one worker
thread so the loop never waits on the database (SQLite's write lock or a slow disk), and
catalog writes keep their order. Start-up reconciles the volumes with the catalog first
(see ``vigil.recording.check``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Max
from django.utils import timezone

from vigil import __version__
from vigil.accounts.actor import Actor
from vigil.media.ingest import CameraIngest, GapCause, IngestState
from vigil.media.ingest import Gap as EngineGap
from vigil.media.rtsp import Credentials
from vigil.media.segment import FinishedSegment
from vigil.recording import check
from vigil.recording.catalog import GapTracker, add_segment
from vigil.recording.models import CameraHealth, Gap, RecorderNode, Segment
from vigil.recording.storage import ensure_marker
from vigil.school.models import Camera, Recorder, StorageVolume
from vigil.school.services import stream_credentials

log = logging.getLogger("vigil.recording")
T = TypeVar("T")

HEALTH_INTERVAL = 5.0
OFFLINE_ALERT_AFTER = 60.0  # seconds offline before the desk is alerted
PAUSED_DETAIL = "recording paused: volume full of footage within the floor or under hold"


@dataclass
class CameraRun:
    camera: Camera
    volume: StorageVolume
    ingest: CameraIngest
    gaps: GapTracker
    # Open gap rows left by the previous run (clean stop or crash), closed when this run
    # starts recording or reports its own gap.
    inherited_gaps: list[int] = field(default_factory=list)
    offline_since: float | None = None
    alerted: bool = False
    paused: bool = False
    task: asyncio.Task[None] | None = None


def pick_volume(recorder: Recorder) -> StorageVolume:
    """The recorder's volume with the most free space, its marker checked."""
    volumes = list(recorder.volumes.all())
    if not volumes:
        raise RuntimeError(f"recorder {recorder.code} has no storage volume")
    best: tuple[int, StorageVolume] | None = None
    for volume in volumes:
        Path(volume.path).mkdir(parents=True, exist_ok=True)
        ensure_marker(volume)
        free = os.statvfs(volume.path).f_bavail * os.statvfs(volume.path).f_frsize
        if best is None or free > best[0]:
            best = (free, volume)
    assert best is not None
    return best[1]


def cameras_for_recorder(recorder: Recorder, only: list[str] | None = None) -> list[Camera]:
    """In-service cameras (state and passed inspection, Art. 2.1) assigned to a recorder."""
    qs = Camera.objects.in_service().filter(recorder=recorder).select_related("area", "credential")
    if only is not None:
        qs = qs.filter(code__in=only)
    return list(qs.order_by("code"))


class NodeProcess:
    """Records the in-service cameras of one or more recorders in one event loop."""

    def __init__(
        self,
        recorders: list[Recorder],
        *,
        only: list[str] | None = None,
        segment_seconds: float | None = None,
        ingest_options: dict[str, object] | None = None,
    ) -> None:
        self.recorders = recorders
        self.only = only
        self.segment_seconds = float(segment_seconds or settings.VIGIL.recording.segment_seconds)
        self.ingest_options = ingest_options or {}
        self.runs: dict[str, CameraRun] = {}
        self.db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vigil-catalog")
        # Retention sweeps run on their own thread (and database connection) in short
        # transactions, so catalog writes never wait for a whole sweep.
        self.maint = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vigil-retention")
        self._maint_future: concurrent.futures.Future[dict[int, bool]] | None = None
        self.stopping = asyncio.Event()
        self.started_at = timezone.now()
        self.actor = Actor.system("recorder")
        self.hostname = socket.gethostname()

    # ---------------------------------------------------------------- database thread
    def _db(self, fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
        def call() -> T:
            close_old_connections()
            try:
                return fn(*args)
            except Exception:
                log.exception("catalog write failed: %s", getattr(fn, "__name__", fn))
                raise

        return self.db.submit(call)

    def _on_segment(self, run: CameraRun, seg: FinishedSegment) -> None:
        self._db(self._store_segment, run, seg)

    def _store_segment(self, run: CameraRun, seg: FinishedSegment) -> None:
        self._close_inherited(run, seg.start)
        add_segment(run.camera, run.volume, seg)

    def _on_gap(self, run: CameraRun, gap: EngineGap) -> None:
        self._db(self._store_gap, run, gap)

    def _store_gap(self, run: CameraRun, gap: EngineGap) -> None:
        self._close_inherited(run, datetime.fromtimestamp(gap.start_utc, tz=UTC))
        if run.paused and str(gap.cause) == "recorder_stopped":
            gap = EngineGap(
                gap.camera_code,
                gap.start_utc,
                GapCause.STORAGE_ERROR,
                PAUSED_DETAIL,
                gap.end_utc,
                gap.id,
            )
        run.gaps.apply(gap)

    def _close_inherited(self, run: CameraRun, at: datetime) -> None:
        if run.inherited_gaps:
            for gap in Gap.objects.filter(pk__in=run.inherited_gaps, end__isnull=True):
                gap.end = max(at, gap.start)
                gap.save(update_fields=["end"])
            run.inherited_gaps = []

    # ---------------------------------------------------------------- start-up
    def prepare(self) -> None:
        """Reconcile volumes, register the node, and set up one ingest per camera."""
        for recorder in self.recorders:
            volume = pick_volume(recorder)
            report = check.reconcile_volume(volume, actor=self.actor, startup=True)
            if report.adopted or report.pending_intents or report.quarantined:
                log.warning(
                    "recorder %s start-up reconciliation: %s", recorder.code, report.summary()
                )
            RecorderNode.objects.update_or_create(
                recorder=recorder,
                defaults={
                    "hostname": self.hostname,
                    "pid": os.getpid(),
                    "started_at": self.started_at,
                    "heartbeat_at": timezone.now(),
                    "stopped_at": None,
                    "version": __version__,
                },
            )
            for camera in cameras_for_recorder(recorder, self.only):
                self.runs[camera.code] = self._make_run(camera, volume)
        if not self.runs:
            log.warning(
                "no in-service camera to record on %s", ", ".join(r.code for r in self.recorders)
            )

    def _make_run(self, camera: Camera, volume: StorageVolume) -> CameraRun:
        last_end = Segment.objects.filter(camera=camera).aggregate(m=Max("end"))["m"]
        inherited = list(
            Gap.objects.filter(camera=camera, end__isnull=True).values_list("pk", flat=True)
        )
        if last_end is not None and not inherited:
            # The previous run did not stop cleanly (no open "recorder stopped" gap): the
            # time from its last segment to now is a gap all the same.
            gap = Gap.objects.create(
                camera=camera,
                start=last_end,
                end=None,
                cause=Gap.Cause.RECORDER_STOPPED,
                detail="recorder was not running (unclean stop)",
            )
            inherited = [gap.pk]
        username, password = stream_credentials(camera)
        options = {"segment_duration": self.segment_seconds, **self.ingest_options}
        code = camera.code
        ingest = CameraIngest(
            code,
            camera.main_url,
            volume.path,
            credentials=Credentials(username, password) if (username or password) else None,
            on_segment=lambda seg: self._on_segment(self.runs[code], seg),
            on_gap=lambda gap: self._on_gap(self.runs[code], gap),
            floor_utc=last_end.timestamp() if last_end is not None else None,
            **options,  # type: ignore[arg-type]
        )
        return CameraRun(
            camera=camera,
            volume=volume,
            ingest=ingest,
            gaps=GapTracker.for_camera(camera),
            inherited_gaps=inherited,
        )

    # ---------------------------------------------------------------- periodic work
    def _health_rows(self) -> list[CameraHealth]:
        now = time.time()
        rows = []
        for run in self.runs.values():
            st = run.ingest.stats
            online = st.state == IngestState.ONLINE
            if online:
                run.offline_since = None
            elif run.offline_since is None:
                run.offline_since = now
            rows.append(
                CameraHealth(
                    camera=run.camera,
                    online=online,
                    fps=round(st.fps, 2),
                    bitrate_bps=round(st.bitrate, 1),
                    last_frame_at=(
                        datetime.fromtimestamp(st.last_frame_utc, tz=UTC)
                        if st.last_frame_utc
                        else None
                    ),
                    # Every PLAY after this process's first one is a reconnection.
                    reconnects_last_hour=sum(1 for t in list(st.reconnects)[1:] if now - t <= 3600),
                    last_error=st.last_error[:500],
                    codec=st.codec,
                    width=st.width,
                    height=st.height,
                    node=f"{self.hostname}:{os.getpid()}",
                )
            )
        return rows

    def _write_health(self, rows: list[CameraHealth]) -> None:
        from vigil.alerts.services import clear_alert, raise_alert

        CameraHealth.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["camera"],
            update_fields=[
                "online",
                "fps",
                "bitrate_bps",
                "last_frame_at",
                "reconnects_last_hour",
                "last_error",
                "codec",
                "width",
                "height",
                "node",
                "updated_at",
            ],
        )
        RecorderNode.objects.filter(recorder__in=self.recorders).update(heartbeat_at=timezone.now())
        now = time.time()
        for run in self.runs.values():
            if run.offline_since is not None and now - run.offline_since >= OFFLINE_ALERT_AFTER:
                if not run.alerted and not _video_lost_open(run.camera):
                    raise_alert(
                        cause="camera_offline",
                        severity="warning",
                        title=f"{run.camera.code} {run.camera.name}: no video",
                        message=run.ingest.stats.last_error,
                        camera=run.camera,
                        audience=("security_guard", "security_head", "it_staff", "department_head"),
                        actor=self.actor,
                    )
                    run.alerted = True
            elif run.offline_since is None and run.alerted:
                clear_alert(cause="camera_offline", camera=run.camera, note="video is back")
                run.alerted = False

    def _maintenance(self) -> dict[int, bool]:
        """Retention sweep of this node's volumes; returns whether each may be written."""
        from vigil.retention import services as retention

        close_old_connections()
        allowed: dict[int, bool] = {}
        for volume in {run.volume for run in self.runs.values()}:
            try:
                retention.sweep(volume, actor=self.actor)
                allowed[volume.pk] = retention.recording_allowed(volume)
            except Exception:
                log.exception("retention sweep of %s failed", volume.path)
                allowed[volume.pk] = True  # never stop recording because a sweep failed
        return allowed

    def _apply_pauses(self, allowed: dict[int, bool]) -> None:
        """Pause cameras on a full volume; resume them when space is back (ADR 0010)."""
        loop = asyncio.get_running_loop()
        for code, run in list(self.runs.items()):
            may_write = allowed.get(run.volume.pk, True)
            if not may_write and not run.paused:
                log.error("camera %s: %s", code, PAUSED_DETAIL)
                run.paused = True
                run.ingest.stop()
            elif may_write and run.paused and run.task is not None and run.task.done():
                log.warning("camera %s: space is back, recording resumes", code)
                fresh = self._make_run(run.camera, run.volume)
                self.runs[code] = fresh
                fresh.task = loop.create_task(fresh.ingest.run(), name=f"ingest-{code}")

    async def _periodic(self) -> None:
        loop = asyncio.get_running_loop()
        interval = float(settings.VIGIL.retention.sweep_interval_seconds)
        next_maintenance = loop.time() + 5.0
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL):
                    await self.stopping.wait()
            rows = self._health_rows()
            self._db(self._write_health, rows)
            done = self._maint_future
            if done is not None and done.done():
                self._maint_future = None
                if done.exception() is None:
                    self._apply_pauses(done.result())
            if self._maint_future is None and loop.time() >= next_maintenance:
                next_maintenance = loop.time() + interval
                self._maint_future = self.maint.submit(self._maintenance)

    # ---------------------------------------------------------------- run
    def stop(self) -> None:
        self.stopping.set()
        for run in self.runs.values():
            run.ingest.stop()

    async def run(self, *, handle_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        for code, r in self.runs.items():
            r.task = loop.create_task(r.ingest.run(), name=f"ingest-{code}")
        periodic = loop.create_task(self._periodic())
        log.info("recording %d camera(s)", len(self.runs))
        try:
            await self.stopping.wait()
            await asyncio.gather(*(r.task for r in self.runs.values() if r.task is not None))
        finally:
            self.stopping.set()
            await periodic
            # Let queued catalog writes (the last segments, "recorder stopped" gaps) land.
            self._db(self._write_health, self._health_rows()).result()
            self._db(self._mark_stopped).result()
            self.db.shutdown(wait=True)
            self.maint.shutdown(wait=True)

    def _mark_stopped(self) -> None:
        RecorderNode.objects.filter(recorder__in=self.recorders, pid=os.getpid()).update(
            stopped_at=timezone.now()
        )
        CameraHealth.objects.filter(camera__in=[r.camera for r in self.runs.values()]).update(
            online=False
        )
        connection.close()


def _video_lost_open(camera: Camera) -> bool:
    """The analyser already reported this camera's video lost: one alert is enough."""
    from vigil.alerts.models import Alert

    return (
        Alert.objects.filter(camera=camera, cause="tamper_video_lost")
        .exclude(state=Alert.State.RESOLVED)
        .exists()
    )
