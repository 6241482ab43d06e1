"""Camera simulator: many looping RTSP cameras served by gst-rtsp-server.

The server itself (:mod:`vigil.media.simulator.gst_server`) runs as a subprocess under
the system Python, which has GStreamer's introspection bindings. This module is the
virtualenv side: it derives fixtures from the real footage, writes the server's JSON
configuration, starts it on a free port, waits for its ``READY`` line and exposes one
URL per camera code and stream.

Example::

    with Simulator.standard(cameras=8) as sim:
        url = sim.url("CAM01", "main")
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from vigil.media.simulator.fixtures import (
    CAR_MAIN_AV,
    MAIN_H264,
    MAIN_H265,
    SUB_H264,
    Fixture,
    FootageMissing,
    build_fixture,
)

__all__ = [
    "CameraMount",
    "FootageMissing",
    "Simulator",
    "SimulatorError",
    "free_port",
    "gst_available",
]

SYSTEM_PYTHON = os.environ.get("VIGIL_GST_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("gst_server.py")


class SimulatorError(RuntimeError):
    """The simulator server could not be started."""


def gst_available() -> bool:
    """True when the system Python can import GstRtspServer."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class CameraMount:
    """One simulated camera stream: RTSP path and the fixture it loops."""

    code: str
    stream: str  # "main", "sub", ...
    fixture: Fixture

    @property
    def path(self) -> str:
        """RTSP path, e.g. ``/cam/CAM01/main``."""
        return f"/cam/{self.code}/{self.stream}"


@dataclass
class Simulator:
    """Starts and stops the gst-rtsp-server subprocess serving ``mounts``."""

    mounts: list[CameraMount]
    host: str = "127.0.0.1"
    port: int = 0
    user: str | None = None
    password: str | None = None
    auth_methods: tuple[str, ...] = ("basic", "digest")
    clock_mount: str | None = "/clock"
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: Path | None = field(default=None, init=False, repr=False)

    @classmethod
    def standard(
        cls,
        cameras: int = 8,
        *,
        sub: bool = True,
        h265: int = 0,
        audio: int = 0,
        prefix: str = "CAM",
        **kwargs: object,
    ) -> Simulator:
        """``cameras`` H.264 1080p cameras (+ sub-streams); the first ``h265`` ones send
        H.265 on the main stream and the next ``audio`` ones are the street camera with
        AAC audio."""
        main = build_fixture(MAIN_H264)
        sub_fx = build_fixture(SUB_H264) if sub else None
        hevc = build_fixture(MAIN_H265) if h265 else None
        car = build_fixture(CAR_MAIN_AV) if audio else None
        mounts: list[CameraMount] = []
        for i in range(cameras):
            code = f"{prefix}{i + 1:02d}"
            fixture = main
            if i < h265 and hevc is not None:
                fixture = hevc
            elif i < h265 + audio and car is not None:
                fixture = car
            mounts.append(CameraMount(code, "main", fixture))
            if sub_fx is not None:
                mounts.append(CameraMount(code, "sub", sub_fx))
        return cls(mounts=mounts, **kwargs)  # type: ignore[arg-type]

    def config(self) -> dict[str, object]:
        """The JSON configuration handed to the server."""
        auth = None
        if self.user is not None:
            auth = {
                "user": self.user,
                "password": self.password or "",
                "methods": list(self.auth_methods),
            }
        return {
            "bind": self.host,
            "port": self.port,
            "auth": auth,
            "clock_mount": self.clock_mount,
            "mounts": [{"path": m.path, **m.fixture.to_json()} for m in self.mounts],
        }

    def start(self, timeout: float = 20.0) -> Simulator:
        """Start the server (on a free port unless one was given) and wait for READY."""
        if self._proc is not None:
            raise SimulatorError("simulator already running")
        if self.port == 0:
            self.port = free_port(self.host)
        self._tmp = Path(tempfile.mkdtemp(prefix="vigil-sim-"))
        cfg = self._tmp / "config.json"
        cfg.write_text(json.dumps(self.config()), encoding="utf-8")
        proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        output = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"READY" not in output:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or proc.poll() is not None:
                    self.stop()
                    raise SimulatorError(
                        f"simulator did not become ready: {output.decode(errors='replace')}"
                    )
                if sel.select(remaining):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        continue
                    output += chunk
        return self

    @property
    def pid(self) -> int | None:
        """Process id of the running server."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill=True``)."""
        proc = self._proc
        self._proc = None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def restart(self, timeout: float = 20.0) -> None:
        """Start again on the same port (after :meth:`stop`)."""
        self.stop()
        self.start(timeout)

    def url(self, code: str, stream: str = "main", *, with_credentials: bool = False) -> str:
        """RTSP URL of ``code``'s ``stream``."""
        auth = ""
        if with_credentials and self.user is not None:
            auth = f"{self.user}:{self.password or ''}@"
        return f"rtsp://{auth}{self.host}:{self.port}/cam/{code}/{stream}"

    @property
    def clock_url(self) -> str:
        """URL of the live wall-clock mount."""
        return f"rtsp://{self.host}:{self.port}{self.clock_mount}"

    @property
    def codes(self) -> list[str]:
        """Camera codes, in order."""
        seen: dict[str, None] = {}
        for m in self.mounts:
            seen.setdefault(m.code, None)
        return list(seen)

    def __enter__(self) -> Simulator:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
