from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vigil.analytics.runtime import AnalysisNode
from vigil.school.models import Camera, Recorder


class Command(BaseCommand):
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
            "--threads", type=int, default=None, help="analysis threads (default: one per core)"
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
            return list(qs.order_by("code"))

        if opts["fps"] is not None and not 0 < opts["fps"] <= 30:
            raise CommandError("--fps must be between 0 and 30")
        node = AnalysisNode(
            select,
            fps=opts["fps"],
            threads=opts["threads"],
            keyframes_only=opts["keyframes_only"],
            stats_file=Path(opts["stats_file"]) if opts["stats_file"] else None,
        )
        node.prepare()
        self.stdout.write(
            f"Analysing {len(node.runs)} camera(s) at {node.fps:g} fps on {node.threads} thread(s)"
        )
        asyncio.run(node.run())
        self.stdout.write("Analysis stopped; state saved.")
