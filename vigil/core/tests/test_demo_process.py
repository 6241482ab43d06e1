"""`vigil demo` as the README runs it: web UI, simulated cameras and recorders together."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, free_port

pytestmark = [pytest.mark.rtsp, pytest.mark.footage, pytest.mark.slow]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_runs_web_cameras_and_recorders_and_stops_cleanly(tmp_path, footage) -> None:  # type: ignore[no-untyped-def]
    from vigil.media.simulator import gst_available

    if not gst_available():
        pytest.skip("GStreamer RTSP server not available")
    if not _port_free(8554):
        pytest.skip("port 8554 (the demo cameras' RTSP port) is in use")
    port = free_port()
    env = {**os.environ, "VIGIL_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "demo", "--port", str(port), "--cameras", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        recorded = False
        while time.monotonic() < deadline and not recorded:
            time.sleep(1)
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()
            recorded = any((tmp_path / "volumes").rglob("*.mp4"))
        assert recorded, (tmp_path / "demo.log").read_text()
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status = r.status
            except OSError:
                time.sleep(1)
        assert status == 200, (tmp_path / "demo.log").read_text()
        text = (tmp_path / "demo.log").read_text()
        assert "Administrator login: admin / " in text
        assert "86 cameras" in text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
        log.close()
    assert _port_free(port) and _port_free(8554)
    status = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "check", "--hash"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
