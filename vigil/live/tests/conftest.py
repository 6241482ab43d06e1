"""Fixtures for the live app: recorded footage in the test database, and a whole site
(demo school + camera simulator + real ``vigil serve``) for the browser tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, VigilServer, run_vigil
from vigil.media.simulator import Simulator, gst_available
from vigil.media.simulator.fixtures import FootageMissing, footage_dir


def require_footage() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI not installed")
    if not (footage_dir() / "one-by-one-person-detection.mp4").exists():
        pytest.skip("real sample footage not found (set VIGIL_FOOTAGE_DIR)")


@pytest.fixture
def recorded(demo_site: Any) -> dict[str, Any]:
    """CAM-004 (H.264) and CAM-001 (H.265) recorded from 30 minutes ago: [0, 30) s, a gap
    (camera unreachable) [30, 45) s, then [45, 65) s; 10 s segments."""
    require_footage()
    from vigil.live.tests.footage import seed_catalog

    base = float(int((time.time() - 1800) // 60) * 60)
    spans = [(base, 30.0), (base + 45, 20.0)]
    try:
        n264 = seed_catalog("CAM-004", "main-h264", spans, "camera_unreachable")
        n265 = seed_catalog("CAM-001", "main-h265", [(base, 12.0)], "camera_unreachable")
    except FootageMissing as exc:
        pytest.skip(str(exc))
    return {"base": base, "segments": n264, "h265_segments": n265}


# ----------------------------------------------------------------- the whole site
@dataclass
class LiveSite:
    data_dir: Path
    simulator: Simulator
    server: VigilServer
    footage_base: float

    @property
    def url(self) -> str:
        return self.server.url

    def django(self, code: str) -> str:
        """Run Python with Django set up on the site's data directory; returns stdout."""
        env = {**os.environ, "VIGIL_DATA_DIR": str(self.data_dir)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        prelude = (
            "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'vigil.settings'; "
            "django.setup()\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", prelude + code],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return proc.stdout

    def audit(self, sql_where: str) -> list[dict[str, Any]]:
        """Audit entries matching a SQL condition on audit_auditentry (read-only)."""
        import sqlite3

        con = sqlite3.connect(f"file:{self.data_dir / 'vigil.sqlite3'}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            rows = con.execute(
                f"SELECT * FROM audit_auditentry WHERE {sql_where} ORDER BY seq"  # noqa: S608
            ).fetchall()
        finally:
            con.close()
        return [dict(r) for r in rows]


LIVE_TOML = """
[live]
recheck_seconds = 2
max_transcodes = 1
linger_seconds = 3
token_seconds = 60
"""


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The demo school on a real simulator (86 cameras; CAM-001/002 send H.265 on the main
    stream; CAM-003 is the wall clock) with recorded footage, served by ``vigil serve``."""
    require_footage()
    if not gst_available():
        pytest.skip("GStreamer RTSP server (system python3 with gi) not available")
    data = tmp_path_factory.mktemp("live-site")
    run_vigil(["init", "--demo"], data, check=True)
    (data / "vigil.toml").write_text(LIVE_TOML, encoding="utf-8")
    sim = Simulator.standard(86, prefix="CAM-0", h265=2)
    sim.start()
    server: VigilServer | None = None
    try:
        env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        out = subprocess.run(
            [sys.executable, "-m", "vigil.live.tests.site", "--port", str(sim.port),
             "--clock", "CAM-003", "--footage"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=True,
        )  # fmt: skip
        info = json.loads(out.stdout.strip().splitlines()[-1])
        server = VigilServer(data).start()
        yield LiveSite(data, sim, server, float(info["base"]))
    finally:
        if server is not None:
            server.stop()
        sim.stop()
