from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from vigil.analytics.runtime import AnalysisNode
from vigil.core.commands import PagelessCommand
from vigil.school.models import Camera, Recorder


def in_shard(code: str, shard: tuple[int, int] | None) -> bool:
    """Stable split of cameras among processes (by a hash of the code, so a camera stays
    in its process when others join or leave service)."""
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(code.encode()) % count == index


def parse_shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError as exc:
        raise CommandError("--shard takes K/N, e.g. 0/2") from exc
    if not 0 <= index < count:
        raise CommandError("--shard K/N needs 0 <= K < N")
    return index, count


class Command(PagelessCommand):
    help = (
        "Analyse the sub-stream of every in-service camera: motion events, tamper "
        "detection (covered, blurred, moved, dark, frozen, video lost) and image quality."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recorder",
            action="append",
            default=[],
            metavar="CODE",
            help="analyse only the cameras of this recorder (repeatable)",
        )
        parser.add_argument(
            "--camera",
            action="append",
            default=[],
            metavar="CODE",
            help="analyse only these cameras (repeatable)",
        )
        parser.add_argument(
            "--demo-cameras",
            type=int,
            default=0,
            metavar="N",
            help="demo: analyse only the N simulated cameras",
        )
        parser.add_argument(
            "--fps", type=float, default=None, help="frames analysed per second (default 5)"
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="share the cameras among N processes (default: one per CPU core)",
        )
        parser.add_argument("--shard", default=None, help=argparse_hide())
        parser.add_argument(
            "--threads", type=int, default=None, help="analysis threads per process (default 1)"
        )
        parser.add_argument(
            "--keyframes-only",
            action="store_true",
            help="decode keyframes only (tamper and quality; motion at one frame per GOP)",
        )
        parser.add_argument(
            "--stats-file", default=None, help="write throughput figures here (benchmarks)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.getLogger("vigil").setLevel(logging.INFO)
        recorders: list[str] = opts["recorder"]
        if recorders:
            found = set(Recorder.objects.filter(code__in=recorders).values_list("code", flat=True))
            missing = set(recorders) - found
            if missing:
                raise CommandError(f"no recorder with code {', '.join(sorted(missing))}")
        if opts["fps"] is not None and not 0 < opts["fps"] <= 30:
            raise CommandError("--fps must be between 0 and 30")
        shard = parse_shard(opts["shard"]) if opts["shard"] else None
        processes = opts["processes"]
        if processes is None:
            processes = settings.VIGIL.analytics.processes or (os.cpu_count() or 1)
        if shard is None and processes > 1:
            self._supervise(processes, opts)
            return
        only: list[str] = opts["camera"]
        if opts["demo_cameras"]:
            from vigil.core.demo import demo_selection

            only = demo_selection(opts["demo_cameras"])

        def select() -> list[Camera]:
            """In-service cameras (state and passed inspection, Art. 2.1), as the recorder."""
            qs = Camera.objects.in_service().select_related(
                "area", "area__department", "credential"
            )
            if recorders:
                qs = qs.filter(recorder__code__in=recorders)
            if only:
                qs = qs.filter(code__in=only)
            return [c for c in qs.order_by("code") if in_shard(c.code, shard)]

        node = AnalysisNode(
            select,
            fps=opts["fps"],
            threads=opts["threads"],
            keyframes_only=opts["keyframes_only"],
            stats_file=Path(opts["stats_file"]) if opts["stats_file"] else None,
            purge=shard is None or shard[0] == 0,
        )
        node.prepare()
        where = f" (share {shard[0] + 1} of {shard[1]})" if shard else ""
        self.stdout.write(
            f"Analysing {len(node.runs)} camera(s){where} at {node.fps:g} fps "
            f"on {node.threads} thread(s)"
        )
        asyncio.run(node.run())
        self.stdout.write("Analysis stopped; state saved.")

    def _supervise(self, processes: int, opts: dict[str, Any]) -> None:
        """Run N copies of this command, each on its share of the cameras; stop them all
        on SIGTERM/SIGINT (each saves its state), and exit when they have."""
        children = []
        for i in range(processes):
            args = ["--shard", f"{i}/{processes}"]
            for code in opts["recorder"]:
                args += ["--recorder", code]
            for code in opts["camera"]:
                args += ["--camera", code]
            if opts["demo_cameras"]:
                args += ["--demo-cameras", str(opts["demo_cameras"])]
            for name in ("fps", "threads"):
                if opts[name] is not None:
                    args += [f"--{name}", str(opts[name])]
            if opts["keyframes_only"]:
                args.append("--keyframes-only")
            if opts["stats_file"]:
                args += ["--stats-file", f"{opts['stats_file']}.{i}"]
            children.append(subprocess.Popen([sys.executable, "-m", "vigil.cli", "analyze", *args]))
        self.stdout.write(f"Analysis shared among {processes} processes")

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        codes = [child.wait() for child in children]
        if any(code not in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes):
            raise CommandError(f"an analysis process failed (exit codes {codes})")


def argparse_hide() -> str:
    import argparse

    return argparse.SUPPRESS
