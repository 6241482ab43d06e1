"""`vigil analyze` as a real process against real RTSP cameras (the simulator serving
real footage): motion events from people walking, a tamper alert when one camera's
picture gets covered, none for the untouched camera, state saved on SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import ROOT, run_vigil
from vigil.media.simulator import CameraMount, Simulator, free_port, gst_available
from vigil.media.simulator.fixtures import (
    SUB_H264,
    Fixture,
    FixtureSpec,
    FootageMissing,
    build_fixture,
    cache_dir,
)

pytestmark = [pytest.mark.rtsp, pytest.mark.footage, pytest.mark.slow]

CLEAN, COVERED = 20.0, 20.0  # seconds of the tampered camera's loop


def covered_fixture(footage: Path) -> Fixture:
    """40 s of real footage, the second half covered (a near-uniform patch over 94 %)."""
    import numpy as np

    from vigil.analytics.clips import to_sub, write_annexb
    from vigil.vision.decode import read_video
    from vigil.vision.synthetic import TamperParams, apply_tamper

    spec = FixtureSpec(
        name="tamper-covered",
        source="one-by-one-person-detection.mp4",
        codec="h264",
        width=640,
        height=360,
        fps=10.0,
        bitrate_kbps=450,
        duration=CLEAN + COVERED,
    )
    path = cache_dir() / "fixtures" / "analytics-covered-v1" / "video.h264"
    if not path.is_file():
        frames = read_video(footage / spec.source, fps=10.0, max_seconds=60.0)
        frames = [f for f in frames if f.ts >= 20.0][: int(spec.duration * spec.fps)]
        params = TamperParams(
            "covered", {"coverage": 0.94, "tone": 70.0, "gradient": 6.0, "side": 0.0}
        )
        out = []
        for i, f in enumerate(frames):
            sub = to_sub(np.ascontiguousarray(f.luma))
            out.append(apply_tamper(sub, params, noise_seed=i) if i >= CLEAN * spec.fps else sub)
        write_annexb(out, spec.fps, path)
    return Fixture(spec=spec, video=path, audio=None)


def _sql(db: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, footage: Path) -> Iterator[tuple[Path, Simulator]]:
    if not gst_available():
        pytest.skip("GStreamer RTSP server not available")
    data = tmp_path / "data"
    data.mkdir()
    run_vigil(["init", "--demo"], data, check=True)
    port = free_port()
    db = data / "vigil.sqlite3"
    con = sqlite3.connect(db)
    con.execute("UPDATE school_camera SET sub_url = replace(sub_url, ':8554/', ?)", (f":{port}/",))
    con.commit()
    con.close()
    try:
        sub = build_fixture(SUB_H264)
    except FootageMissing as exc:
        pytest.skip(str(exc))
    out = run_vigil(
        ["manage", "shell", "-c",
         "from vigil.school.models import Camera;from vigil.school.services import stream_credentials;"
         "print(*stream_credentials(Camera.objects.get(code='CAM-001')))"],
        data, check=True,
    )  # fmt: skip
    user, password = out.stdout.strip().splitlines()[-1].split()
    sim = Simulator(
        mounts=[
            CameraMount("CAM-001", "sub", sub),
            CameraMount("CAM-035", "sub", covered_fixture(footage)),
        ],
        port=port,
        user=user,
        password=password,
        auth_methods=("digest",),
    ).start()
    yield data, sim
    sim.stop()


def test_analyze_process_motion_tamper_and_shutdown(site) -> None:  # type: ignore[no-untyped-def]
    data, _sim = site
    db = data / "vigil.sqlite3"
    env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (data / "analyze.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "analyze", "--camera", "CAM-001", "--camera", "CAM-035"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        online_at = None
        while time.monotonic() < deadline and online_at is None:
            assert proc.poll() is None, (data / "analyze.log").read_text()
            rows = _sql(db, "SELECT count(*) FROM analytics_analysisstatus WHERE online = 1")
            if rows and rows[0][0] == 2:
                online_at = datetime.now(UTC)
            time.sleep(0.3)
        assert online_at is not None, (data / "analyze.log").read_text()
        alert = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and alert is None:
            found = _sql(
                db,
                "SELECT a.cause, a.opened_at, a.detail_json, a.snapshot_before, a.snapshot_after, "
                "a.department_id, a.severity FROM alerts_alert a JOIN school_camera c ON c.id = a.camera_id "
                "WHERE c.code = 'CAM-035' AND a.cause LIKE 'tamper%'",
            )  # fmt: skip
            alert = found[0] if found else None
            time.sleep(0.5)
        assert alert is not None, (data / "analyze.log").read_text()
        cause, opened, detail, before, after, department, severity = alert
        assert cause == "tamper_covered" and severity == "critical" and department is not None
        assert before and after  # snapshots stored
        # The covered half starts CLEAN s after the first frame, which came at most ~5.5 s
        # before the status showed "online": a conservative bound on the delay.
        assert (_utc(opened) - online_at).total_seconds() - (CLEAN - 5.5) <= 10.0
        import json

        d = json.loads(detail)
        assert (
            datetime.fromisoformat(d["raised_at"]) - datetime.fromisoformat(d["started_at"])
        ).total_seconds() <= 10
        # the untouched camera: motion events, no tamper alert
        events = _sql(
            db,
            "SELECT e.start, e.end, e.has_thumbnail FROM analytics_motionevent e "
            "JOIN school_camera c ON c.id = e.camera_id WHERE c.code = 'CAM-001' AND e.end IS NOT NULL",
        )
        assert events and all(has for _s, _e, has in events)
        assert not _sql(
            db,
            "SELECT 1 FROM alerts_alert a JOIN school_camera c ON c.id = a.camera_id "
            "WHERE c.code = 'CAM-001' AND a.cause LIKE 'tamper%'",
        )
        fps = _sql(db, "SELECT fps FROM analytics_analysisstatus WHERE online = 1")
        assert all(3.5 <= f <= 6.0 for (f,) in fps), fps
        # A technician takes the covered camera into maintenance: it stops being watched.
        con = sqlite3.connect(db, timeout=30)
        con.execute("UPDATE school_camera SET state = 'maintenance' WHERE code = 'CAM-035'")
        con.commit()
        con.close()
        deadline = time.monotonic() + 20
        status = "SELECT s.online FROM analytics_analysisstatus s JOIN school_camera c ON c.id = s.camera_id WHERE c.code = ?"
        while time.monotonic() < deadline and _sql(db, status, ("CAM-035",))[0][0]:
            time.sleep(0.5)
        assert not _sql(db, status, ("CAM-035",))[0][0]
        assert "CAM-035 is no longer in service" in (data / "analyze.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log.close()
    assert rc == 0, (data / "analyze.log").read_text()
    assert (data / "analytics" / "state" / "CAM-001.npz").stat().st_size > 1000
    assert _sql(db, "SELECT count(*) FROM analytics_analysisstatus WHERE online = 1")[0][0] == 0
