"""Stand-alone recorder process: ``python -m vigil.media.record``.

Records cameras given on the command line (or a JSON file) with the Vigil engine until
SIGTERM/SIGINT or ``--duration`` seconds, writing events (segments, gaps, states) as
JSON lines to ``--events`` if given. ``--workers N`` splits the cameras over N worker
processes (each its own event loop) to use several cores.

Examples::

    python -m vigil.media.record --volume /srv/vigil --camera GATE=rtsp://10.0.0.5/live
    python -m vigil.media.record --volume /tmp/v --cameras-json cams.json --workers 2

``cams.json`` is ``[{"code": "GATE", "url": "rtsp://...", "user": "...", "password": "..."}]``.
Passwords in URLs are accepted but never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from vigil.media.ingest import CameraSpec, Gap, IngestState, Recorder
from vigil.media.rtsp import Credentials
from vigil.media.segment import FinishedSegment

__all__ = ["main", "parse_cameras"]


def parse_cameras(args: argparse.Namespace) -> list[CameraSpec]:
    """Camera specs from ``--camera CODE=URL`` options and ``--cameras-json``."""
    cams: list[CameraSpec] = []
    for item in args.camera or []:
        code, sep, url = item.partition("=")
        if not sep:
            raise SystemExit(f"--camera expects CODE=URL, got {item!r}")
        cams.append(CameraSpec(code, url))
    if args.cameras_json:
        for entry in json.loads(Path(args.cameras_json).read_text(encoding="utf-8")):
            creds = None
            if entry.get("user"):
                creds = Credentials(entry["user"], entry.get("password", ""))
            cams.append(CameraSpec(entry["code"], entry["url"], creds, entry.get("audio", True)))
    return cams


class _Events:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps({"event": kind, **payload}, default=str) + "\n")
            self.stream.flush()

    def segment(self, seg: FinishedSegment) -> None:
        self._write("segment", asdict(seg))

    def gap(self, gap: Gap) -> None:
        self._write("gap", asdict(gap))

    def state(self, code: str, state: IngestState) -> None:
        self._write("state", {"camera_code": code, "state": str(state)})


def _run_workers(argv: list[str], args: argparse.Namespace, count: int) -> int:
    procs: list[subprocess.Popen[bytes]] = []
    base = [a for a in argv if not a.startswith("--workers")]
    # Drop a separate value that followed "--workers".
    if "--workers" in argv:
        i = argv.index("--workers")
        base = argv[:i] + argv[i + 2 :]
    for index in range(count):
        cmd = [sys.executable, "-m", "vigil.media.record", *base, "--worker", f"{index}/{count}"]
        procs.append(subprocess.Popen(cmd))

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(p.wait() for p in procs)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m vigil.media.record", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--volume", required=True, type=Path)
    parser.add_argument("--camera", action="append", metavar="CODE=URL")
    parser.add_argument("--cameras-json", metavar="FILE")
    parser.add_argument("--segment-duration", type=float, default=10.0)
    parser.add_argument("--stall-timeout", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    parser.add_argument(
        "--events", metavar="FILE", help="append JSON-lines events here ('-' = stdout)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cams = parse_cameras(args)
    if not cams:
        parser.error("no cameras given")
    if args.workers > 1 and not args.worker:
        return _run_workers(argv, args, args.workers)
    if args.worker:
        index, _, count = args.worker.partition("/")
        cams = cams[int(index) :: int(count)]
    stream: TextIO | None = None
    if args.events == "-":
        stream = sys.stdout
    elif args.events:
        suffix = f".{args.worker.replace('/', 'of')}" if args.worker else ""
        stream = open(args.events + suffix, "a", encoding="utf-8")  # noqa: SIM115
    events = _Events(stream)
    recorder = Recorder(
        cams,
        args.volume,
        on_segment=events.segment,
        on_gap=events.gap,
        on_state=events.state,
        segment_duration=args.segment_duration,
        stall_timeout=args.stall_timeout,
    )

    async def run() -> None:
        if args.duration > 0:
            asyncio.get_running_loop().call_later(args.duration, recorder.stop)
        await recorder.run()

    try:
        asyncio.run(run())
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
