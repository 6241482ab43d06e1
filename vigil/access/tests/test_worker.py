"""The export worker: jobs that export exactly the granted range, fail with a reason,
can be retried, and survive the worker being stopped or killed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import ROOT, run_vigil
from vigil.access import services, worker
from vigil.access.models import JobState
from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.services import AccessDenied
from vigil.recording.models import Segment

pytestmark = [pytest.mark.django_db, pytest.mark.footage]


def _ffprobe(path: Path) -> tuple[float, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "format=duration:stream=nb_read_frames,codec_name",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    info = json.loads(out.stdout)
    return float(info["format"]["duration"]), int(info["streams"][0]["nb_read_frames"])


def test_the_exported_clip_covers_the_granted_range(users, exported) -> None:  # type: ignore[no-untyped-def]
    package = exported(start=2.35, end=9.15)  # neither end on a keyframe
    req = package.request
    manifest = json.loads(package.manifest)
    (clip,) = manifest["clips"]
    start = datetime.fromisoformat(clip["start_utc"])
    end = datetime.fromisoformat(clip["end_utc"])
    assert abs((start - req.footage_start).total_seconds()) <= 1.0
    assert abs((end - req.footage_end).total_seconds()) <= 1.0
    duration, frames = _ffprobe(services.package_dir(package) / clip["file"])
    granted = (req.footage_end - req.footage_start).total_seconds()
    assert abs(duration - granted) <= 1.0
    assert abs(duration - granted) <= 0.1  # in fact within one frame
    assert abs(frames - granted * 10) <= 1
    job = package.job
    assert job.progress == 1.0 and job.state == JobState.DONE
    starts = AuditEntry.objects.filter(action="footage.export", outcome="success")
    assert starts.filter(actor_username="admin", via="system").exists()  # the worker's check


def test_a_failed_job_says_why_and_can_be_retried(users, approved_copy) -> None:  # type: ignore[no-untyped-def]
    req = approved_copy()
    segment = Segment.objects.filter(camera__code="CAM-010").order_by("start")[1]
    path = Path(segment.volume.path) / segment.path
    moved = path.with_suffix(".away")
    path.rename(moved)  # a disk unmounted, a file gone
    job = services.create_export(Actor(user=users["admin"]), req)
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert path.name in job.error
    assert AuditEntry.objects.filter(action="export.fail").exists()
    moved.rename(path)
    services.retry_export(Actor(user=users["admin"]), job)
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == JobState.DONE and job.attempts == 2 and job.error == ""


def test_an_altered_segment_fails_the_job_and_releases_nothing(users, approved_copy) -> None:  # type: ignore[no-untyped-def]
    req = approved_copy()
    segment = Segment.objects.filter(camera__code="CAM-010").order_by("start")[1]
    path = Path(segment.volume.path) / segment.path
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    job = services.create_export(Actor(user=users["admin"]), req)
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "ingest" in job.error and segment.sha256 in job.error
    assert not req.packages.exists()


def test_a_cancelled_job_stops(users, approved_copy) -> None:  # type: ignore[no-untyped-def]
    req = approved_copy()
    job = services.create_export(Actor(user=users["admin"]), req)
    with pytest.raises(AccessDenied):
        services.cancel_export(Actor(user=users["giaovien"]), job)
    refusal = AuditEntry.objects.get(action="export.cancel", outcome="denied")
    assert refusal.actor_username == "giaovien" and refusal.detail["request"] == req.number
    services.cancel_export(Actor(user=users["admin"]), job)
    assert worker.run_pending("test-worker") == 0
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def _job(db: Path, pk: int) -> dict[str, object]:
    con = sqlite3.connect(db, timeout=30)
    try:
        row = con.execute(
            "SELECT state, progress, lease_owner, attempts, error, stage "
            "FROM access_exportjob WHERE id = ?",
            (pk,),
        ).fetchone()
    finally:
        con.close()
    return dict(zip(["state", "progress", "owner", "attempts", "error", "stage"], row, strict=True))


def _wait(db: Path, pk: int, test, what: str, timeout: float = 120) -> dict[str, object]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _job(db, pk)
        if test(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {_job(db, pk)}")


def _start_worker(data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIGIL_DATA_DIR": str(data), "VIGIL_LOG_LEVEL": "INFO"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "export-worker", "--idle", "0.3"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_a_job_survives_its_worker_being_stopped_and_killed(tmp_path, footage) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "site"
    data.mkdir()
    run_vigil(["init", "--demo"], data, check=True)
    out = run_vigil(
        ["manage", "shell", "-c",
         "from vigil.access.tests.scenario import approved_copy; approved_copy()"],
        data, check=True, timeout=300,
    )  # fmt: skip
    job = json.loads(out.stdout.strip().splitlines()[-1])["job"]
    db = data / "vigil.sqlite3"
    log = tmp_path / "worker.log"
    in_redaction = lambda s: s["state"] == "running" and float(s["progress"]) > 0.12  # noqa: E731

    # 1. A clean stop (SIGTERM, as at a server restart): the job goes back to the queue.
    first = _start_worker(data, log)
    _wait(db, job, in_redaction, "the first worker to be redacting")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    state = _job(db, job)
    assert state["state"] == "queued", state

    # 2. A crash (SIGKILL): the lease names a dead process; the next worker takes over.
    second = _start_worker(data, log)
    running = _wait(db, job, in_redaction, "the second worker to be redacting")
    second.kill()
    second.wait(timeout=30)
    assert _job(db, job)["state"] == "running"
    assert str(running["owner"]).endswith(f":{second.pid}")

    # 3. The next worker finishes it, reusing the clip the earlier attempts copied.
    done = run_vigil(["export-worker", "--once"], data, check=True, timeout=600)
    assert "1 job(s) run" in done.stdout
    state = _job(db, job)
    assert state["state"] == "done", state
    assert state["attempts"] == 3
    assert "reusing" in (log.read_text() + done.stdout + done.stderr)
    con = sqlite3.connect(db)
    try:
        starts = con.execute(
            "SELECT detail_json FROM audit_auditentry WHERE action = 'export.start' ORDER BY seq"
        ).fetchall()
        (name,) = con.execute("SELECT name FROM access_package").fetchone()
    finally:
        con.close()
    assert [json.loads(d)["taken_over"] for (d,) in starts] == [False, False, True]
    verified = run_vigil(["verify", str(data / "exports" / name)], data)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith("valid")
