"""Crash safety of eviction: a sweep process dies (os._exit, no clean-up) after its
deletion intents are committed and before any file is unlinked; the next start of
`vigil retention sweep` finishes the deletion, and catalog and disk agree again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, run_vigil

pytestmark = pytest.mark.slow

SETUP = textwrap.dedent(
    """
    import hashlib, os, sys
    import django
    django.setup()
    from datetime import timedelta
    from django.utils import timezone
    from vigil.recording.models import Segment
    from vigil.recording.storage import ensure_marker
    from vigil.school.models import Camera, StorageVolume

    volume = StorageVolume.objects.get(recorder__code="NVR-03")
    ensure_marker(volume)
    cam = Camera.objects.get(code="CAM-070")
    now = timezone.now()
    total = 0
    for i, age in enumerate([timedelta(days=22, minutes=i) for i in range(40)]
                            + [timedelta(minutes=i + 1) for i in range(10)]):
        start = now - age
        blob = os.urandom(20_000)
        rel = f"{cam.code}/{start:%Y-%m-%d}/{start:%H%M%S}-{i}.mp4"
        path = os.path.join(volume.path, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        Segment.objects.create(
            camera=cam, volume=volume, path=rel, start=start, end=start + timedelta(seconds=10),
            duration=10, size_bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest(), codec="h264",
        )
        total += len(blob)
    # Declare the volume a little smaller than what it holds: the sweep must make room.
    volume.capacity_bytes = total - 1
    volume.save()
    print(volume.path)
    """
)

CRASH = textwrap.dedent(
    """
    import os
    import django
    django.setup()
    import vigil.recording.storage as storage
    from vigil.retention import services
    from vigil.school.models import StorageVolume

    def power_cut(intents, result):
        os._exit(137)  # intents committed, nothing unlinked, no clean-up of any kind

    storage._unlink_intents = power_cut
    services.sweep(StorageVolume.objects.get(recorder__code="NVR-03"))
    print("not reached")
    """
)


def _python(script: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "vigil.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_an_interrupted_eviction_is_finished_at_start_up(data_dir: Path) -> None:
    run_vigil(["init", "--demo"], data_dir, check=True)
    made = _python(SETUP, data_dir)
    assert made.returncode == 0, made.stderr
    volume = Path(made.stdout.strip().splitlines()[-1])
    files_before = set(volume.rglob("*.mp4"))
    assert len(files_before) == 50
    db = data_dir / "vigil.sqlite3"

    crashed = _python(CRASH, data_dir)
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    assert "not reached" not in crashed.stdout
    intents = _count(db, "select count(*) from recording_deletionintent")
    assert intents > 0
    # The rows went with the committed intents, the files are all still there.
    assert _count(db, "select count(*) from recording_segment") == 50 - intents
    assert set(volume.rglob("*.mp4")) == files_before
    assert _count(db, "select count(*) from audit_auditentry where action='footage.delete'") == 1

    restarted = run_vigil(["retention", "sweep", "--once"], data_dir)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert f"finished {intents} interrupted deletion(s)" in restarted.stdout
    assert _count(db, "select count(*) from recording_deletionintent") == 0
    with sqlite3.connect(db) as conn:
        kept = {row[0] for row in conn.execute("select path from recording_segment")}
    on_disk = {str(p.relative_to(volume)) for p in volume.rglob("*.mp4")}
    assert on_disk == kept  # every row has its file and every file its row
    assert len(kept) >= 10  # the ten young segments (under the floor) are still there
    verify = run_vigil(["audit", "verify"], data_dir)
    assert verify.returncode == 0, verify.stderr
