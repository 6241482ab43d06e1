"""Fault tests with real processes: a real RTSP server, `vigil record`, `vigil check`."""

from __future__ import annotations

import itertools
import json
import random
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import run_vigil

pytestmark = [pytest.mark.rtsp, pytest.mark.footage, pytest.mark.slow]


def _ts(text: str) -> float:
    return datetime.fromisoformat(str(text) + ("" if "+" in str(text) else "+00:00")).timestamp()


def test_server_killed_and_restarted_records_the_gap_and_resumes(site) -> None:  # type: ignore[no-untyped-def]
    sim = site.simulator().start()
    try:
        rec = site.record()
        site.wait_for(
            lambda: all(len(site.segments(c)) >= 2 for c in site.codes), 60, "first segments"
        )
        sim.stop(kill=True)
        killed_at = time.time()
        time.sleep(6)
        sim.start()
        back_at = time.time()
        site.wait_for(
            lambda: all(any(_ts(s[1]) > back_at for s in site.segments(c)) for c in site.codes),
            40,
            "segments after the camera came back",
        )
        site.stop(rec)
    finally:
        sim.stop()
    for code in site.codes:
        resumed = min(_ts(s[1]) for s in site.segments(code) if _ts(s[1]) > back_at)
        assert resumed - back_at <= 5.0, (
            f"{code} resumed {resumed - back_at:.1f} s after the camera came back"
        )
        outage = [
            g
            for g in site.gaps(code)
            if g[2] in ("camera_unreachable", "stream_stalled")
            and g[1] is not None
            and _ts(g[0]) <= killed_at + 6
            and _ts(g[1]) >= back_at - 1
        ]
        assert outage, f"no gap recorded for {code}: {site.gaps(code)}"
        # Segments and gaps tile the timeline: no overlaps, no negative durations.
        segs = site.segments(code)
        for a, b in itertools.pairwise(segs):
            assert _ts(a[2]) > _ts(a[1])
            assert _ts(b[1]) >= _ts(a[2]) - 0.001
    check = run_vigil(["check", "--hash"], site.data_dir)
    assert check.returncode == 0, check.stdout + check.stderr


def test_sigkill_loses_at_most_the_segment_in_progress(site) -> None:  # type: ignore[no-untyped-def]
    sim = site.simulator().start()
    try:
        rec = site.record()
        site.wait_for(lambda: all(site.segments(c) for c in site.codes), 60, "first segments")
        time.sleep(random.Random(7).uniform(1.0, 6.0))
        before = {c: len(site.segments(c)) for c in site.codes}
        rec.send_signal(signal.SIGKILL)
        rec.wait()
        killed_at = time.time()
        # Restart: start-up reconciliation adopts what the crash left on disk.
        rec2 = site.record()
        site.wait_for(
            lambda: all(len(site.segments(c)) > before[c] + 1 for c in site.codes),
            60,
            "recording after the restart",
        )
        site.stop(rec2)
    finally:
        sim.stop()
    check = run_vigil(["check", "--hash"], site.data_dir)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "catalog and disk agree" in check.stdout
    for code in site.codes:
        segs = site.segments(code)
        recorded_before_kill = [s for s in segs if _ts(s[1]) < killed_at]
        # The recovered partial segment ends within one segment length of the kill.
        assert killed_at - _ts(recorded_before_kill[-1][2]) <= 4.0 + 1.5
        gaps = site.gaps(code)
        assert any(g[2] == "recorder_stopped" and g[1] is not None for g in gaps), gaps


def test_truncated_segment_still_decodes_up_to_the_cut(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = site.simulator().start()
    try:
        rec = site.record()
        site.wait_for(lambda: len(site.segments("CAM-001")) >= 2, 60, "a finished segment")
        site.stop(rec)
    finally:
        sim.stop()
    (path,) = site.sql(
        "SELECT v.path || '/' || s.path FROM recording_segment s JOIN school_storagevolume v "
        "ON v.id = s.volume_id JOIN school_camera c ON c.id = s.camera_id "
        "WHERE c.code = 'CAM-001' ORDER BY s.start LIMIT 1"
    )[0]
    original = Path(str(path))
    full = _frames(original)
    rng = random.Random(11)
    for _ in range(3):
        copy = tmp_path / "cut.mp4"
        shutil.copy(original, copy)
        size = copy.stat().st_size
        cut = rng.randrange(size // 4, size - 1)
        with copy.open("r+b") as fh:
            fh.truncate(cut)
        frames = _frames(copy)
        assert 0 < frames < full, (cut, frames, full)
        # Roughly proportional: nothing before the cut is lost beyond the torn fragment.
        assert frames >= full * cut / size - 15
    # `vigil check` notices a truncated file in place and leaves it alone.
    shutil.copy(original, tmp_path / "backup.mp4")
    with original.open("r+b") as fh:
        fh.truncate(original.stat().st_size // 2)
    check = run_vigil(["check"], site.data_dir)
    assert check.returncode != 0
    assert "size_mismatch" in check.stdout
    assert original.exists()


def _frames(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(out.stdout or "{}")
    streams = data.get("streams") or [{}]
    return int(streams[0].get("nb_read_frames") or 0)


def test_bad_camera_urls_do_not_disturb_the_others(site) -> None:  # type: ignore[no-untyped-def]
    site.codes = ["CAM-001", "CAM-035", "CAM-069", "CAM-002", "CAM-036"]
    site.sql(
        "UPDATE school_camera SET main_url = 'rtsp://127.0.0.1:1/nothing' WHERE code = 'CAM-002'"
    )
    site.sql("UPDATE school_camera SET main_url = 'rtsp://bad host:99999/x' WHERE code = 'CAM-036'")
    sim = site.simulator().start()
    try:
        rec = site.record()
        good = ["CAM-001", "CAM-035", "CAM-069"]
        site.wait_for(lambda: all(len(site.segments(c)) >= 2 for c in good), 60, "good cameras")
        site.stop(rec)
    finally:
        sim.stop()
    assert not site.segments("CAM-002") and not site.segments("CAM-036")
    causes = {c: {g[2] for g in site.gaps(c)} for c in ("CAM-002", "CAM-036")}
    assert "camera_unreachable" in causes["CAM-002"]
    assert "unsupported_stream" in causes["CAM-036"]  # the malformed URL: a stream error
    for code in good:
        assert not [g for g in site.gaps(code) if g[2] != "recorder_stopped"], site.gaps(code)


def test_swapped_database_never_deletes_footage(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = site.simulator().start()
    try:
        rec = site.record()
        site.wait_for(lambda: len(site.segments("CAM-001")) >= 1, 60, "a segment")
        site.stop(rec)
    finally:
        sim.stop()
    volumes = [Path(str(p)) for (p,) in site.sql("SELECT path FROM school_storagevolume")]
    files_before = sorted(p for v in volumes for p in v.rglob("*") if p.is_file())
    # A fresh database pointed at the same disks (a reinstall, a restored old backup...).
    other = tmp_path / "other"
    other.mkdir()
    run_vigil(["init", "--demo"], other, check=True)
    import sqlite3

    con = sqlite3.connect(other / "vigil.sqlite3")
    for code, path in zip(("NVR-01", "NVR-02", "NVR-03"), sorted(volumes), strict=True):
        con.execute(
            "UPDATE school_storagevolume SET path = ? WHERE recorder_id = "
            "(SELECT id FROM school_recorder WHERE code = ?)",
            (str(path), code),
        )
    con.commit()
    con.close()
    check = run_vigil(["check", "--repair"], other)
    assert check.returncode != 0
    assert "volume_mismatch" in check.stdout
    record = run_vigil(["record", "--all"], other, timeout=60)
    assert record.returncode != 0
    assert "belongs to installation" in record.stderr
    files_after = sorted(p for v in volumes for p in v.rglob("*") if p.is_file())
    assert files_after == files_before
