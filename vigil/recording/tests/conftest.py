"""A real recording site for process tests: a data directory initialised with the demo
school, a real RTSP simulator serving some of its cameras, and `vigil record` run as a
real process against them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, run_vigil
from vigil.media.simulator import CameraMount, Simulator, free_port, gst_available
from vigil.media.simulator.fixtures import MAIN_H264, SUB_H264, FootageMissing, build_fixture


@dataclass
class Site:
    data_dir: Path
    port: int
    codes: list[str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.data_dir / "vigil.sqlite3"

    def sql(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        con = sqlite3.connect(self.db, timeout=30)
        try:
            rows = con.execute(query, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def credentials(self) -> tuple[str, str]:
        out = run_vigil(
            [
                "manage",
                "shell",
                "-c",
                "from vigil.school.models import Camera;"
                "from vigil.school.services import stream_credentials;"
                f"print(*stream_credentials(Camera.objects.get(code='{self.codes[0]}')))",
            ],
            self.data_dir,
            check=True,
        )
        user, password = out.stdout.strip().splitlines()[-1].split()
        return user, password

    def simulator(self) -> Simulator:
        try:
            main, sub = build_fixture(MAIN_H264), build_fixture(SUB_H264)
        except FootageMissing as exc:
            pytest.skip(str(exc))
        user, password = self.credentials()
        mounts = []
        for code in self.codes:
            mounts += [CameraMount(code, "main", main), CameraMount(code, "sub", sub)]
        return Simulator(
            mounts=mounts, port=self.port, user=user, password=password, auth_methods=("digest",)
        )

    def record(self, *extra: str, log: str = "record.log") -> subprocess.Popen[bytes]:
        env = {**os.environ, "VIGIL_DATA_DIR": str(self.data_dir)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        args = [sys.executable, "-m", "vigil.cli", "record", "--all", "--segment-seconds", "4"]
        for code in self.codes:
            args += ["--camera", code]
        with (self.data_dir / log).open("ab") as out:
            proc = subprocess.Popen(
                [*args, *extra], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str = "record.log") -> str:
        path = self.data_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def segments(self, code: str | None = None) -> list[tuple[str, str, str, float, int]]:
        query = (
            "SELECT c.code, s.start, s.end, s.duration, s.size_bytes FROM recording_segment s "
            "JOIN school_camera c ON c.id = s.camera_id"
        )
        params: tuple[object, ...] = ()
        if code:
            query += " WHERE c.code = ?"
            params = (code,)
        return [tuple(r) for r in self.sql(query + " ORDER BY s.start", params)]  # type: ignore[misc]

    def gaps(self, code: str) -> list[tuple[str, str | None, str]]:
        return [
            tuple(r)  # type: ignore[misc]
            for r in self.sql(
                "SELECT g.start, g.end, g.cause FROM recording_gap g "
                "JOIN school_camera c ON c.id = g.camera_id WHERE c.code = ? ORDER BY g.start",
                (code,),
            )
        ]

    def wait_for(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for proc in self.procs:
                if proc.poll() is not None and proc.returncode not in (0, -9, -15):
                    raise AssertionError(f"recorder exited {proc.returncode}:\n{self.log()}")
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.log()[-3000:]}")

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def site(tmp_path: Path, footage: Path) -> Iterator[Site]:
    if not gst_available():
        pytest.skip("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) not available")
    data = tmp_path / "data"
    data.mkdir()
    run_vigil(["init", "--demo"], data, check=True)
    s = Site(data, free_port(), ["CAM-001", "CAM-035", "CAM-069"])
    # Point the cameras at this test's simulator port.
    s.sql(
        "UPDATE school_camera SET main_url = replace(main_url, ':8554/', ?), "
        "sub_url = replace(sub_url, ':8554/', ?)",
        (f":{s.port}/", f":{s.port}/"),
    )
    yield s
    for proc in s.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
