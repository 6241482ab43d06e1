from __future__ import annotations

import signal
import threading
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import CommandError, CommandParser

from vigil.core.commands import PagelessCommand
from vigil.media.simulator import CameraMount, Simulator, SimulatorError, gst_available
from vigil.media.simulator.fixtures import (
    CAR_MAIN_AV,
    MAIN_H264,
    MAIN_H265,
    SUB_H264,
    FootageMissing,
    build_fixture,
)


class Command(PagelessCommand):
    help = (
        "Serve simulated cameras over a real RTSP server (GStreamer's gst-rtsp-server), looping "
        "real footage as camera-like main (1080p, ~2 Mbit/s) and sub (640x360) streams."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--demo",
            action="store_true",
            help="serve the demo school's cameras at the URLs stored for them",
        )
        parser.add_argument(
            "--cameras", type=int, default=8, help="how many cameras (max 86 with --demo)"
        )
        parser.add_argument(
            "--port", type=int, default=None, help="RTSP port (default: from the URLs, or 8554)"
        )
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not gst_available():
            raise CommandError(
                "GStreamer's RTSP server is not available to /usr/bin/python3 "
                "(install python3-gi gir1.2-gst-rtsp-server-1.0; ./run.sh does)"
            )
        try:
            sim = self._demo(opts) if opts["demo"] else self._plain(opts)
        except FootageMissing as exc:
            raise CommandError(str(exc)) from exc
        try:
            sim.start()
        except SimulatorError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        self.stdout.write(
            f"Serving {len(sim.codes)} simulated camera(s) on rtsp://{sim.host}:{sim.port}/cam/<CODE>/main|sub"
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            while not stop.is_set():
                if not sim.running:
                    self.stderr.write("the RTSP server exited; restarting it")
                    sim.restart()
                stop.wait(1.0)
        finally:
            sim.stop()

    def _plain(self, opts: dict[str, Any]) -> Simulator:
        return Simulator.standard(opts["cameras"], host=opts["host"], port=opts["port"] or 8554)

    def _demo(self, opts: dict[str, Any]) -> Simulator:
        from vigil.core.demo import demo_selection
        from vigil.school.models import Camera
        from vigil.school.services import stream_credentials

        codes = demo_selection(opts["cameras"])
        cameras = list(Camera.objects.filter(code__in=codes).order_by("code"))
        if not cameras:
            raise CommandError("the demo school is not seeded: run 'vigil init --demo'")
        main264, main265, sub = (
            build_fixture(MAIN_H264),
            build_fixture(MAIN_H265),
            build_fixture(SUB_H264),
        )
        car = build_fixture(CAR_MAIN_AV)
        mounts = []
        for i, cam in enumerate(cameras):
            # The first camera is the street-facing gate with sound (AAC) from the real footage.
            fixture = car if i == 0 else (main265 if cam.codec == Camera.Codec.H265 else main264)
            mounts.append(CameraMount(cam.code, "main", fixture))
            mounts.append(CameraMount(cam.code, "sub", sub))
        port = opts["port"] or urlsplit(cameras[0].main_url).port or 8554
        user, password = stream_credentials(cameras[0])
        return Simulator(
            mounts=mounts,
            host=opts["host"],
            port=port,
            user=user or None,
            password=password or None,
            auth_methods=("digest",),
        )
