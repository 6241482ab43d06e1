from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.core.commands import PagelessCommand
from vigil.recording.runtime import NodeProcess
from vigil.recording.storage import VolumeMismatch
from vigil.school.models import Recorder


class Command(PagelessCommand):
    help = (
        "Record the main stream of every in-service camera assigned to a recorder "
        "(one recorder node per process; several nodes may share one database)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recorder",
            action="append",
            default=[],
            metavar="CODE",
            help="recorder to run (repeatable)",
        )
        parser.add_argument("--all", action="store_true", help="run every recorder in this process")
        parser.add_argument(
            "--camera",
            action="append",
            default=[],
            metavar="CODE",
            help="record only these cameras (repeatable)",
        )
        parser.add_argument(
            "--demo-cameras",
            type=int,
            default=0,
            metavar="N",
            help="demo: record only the N simulated cameras",
        )
        parser.add_argument("--segment-seconds", type=float, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.getLogger("vigil").setLevel(logging.INFO)
        if opts["all"]:
            recorders = list(Recorder.objects.order_by("code"))
        elif opts["recorder"]:
            recorders = list(Recorder.objects.filter(code__in=opts["recorder"]).order_by("code"))
            missing = set(opts["recorder"]) - {r.code for r in recorders}
            if missing:
                raise CommandError(f"no recorder with code {', '.join(sorted(missing))}")
        else:
            raise CommandError("name a recorder with --recorder CODE (or --all)")
        if not recorders:
            raise CommandError("there is no recorder to run")
        only: list[str] | None = opts["camera"] or None
        if opts["demo_cameras"]:
            from vigil.core.demo import demo_selection

            only = demo_selection(opts["demo_cameras"])
        node = NodeProcess(recorders, only=only, segment_seconds=opts["segment_seconds"])
        try:
            node.prepare()
        except VolumeMismatch as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Recording {len(node.runs)} camera(s) on {', '.join(r.code for r in recorders)}"
        )
        asyncio.run(node.run())
        self.stdout.write("Recorder stopped; open segments finished.")
