"""``vigil export-worker``: run footage extraction jobs into signed evidence packages."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import CommandParser

from vigil.access import worker
from vigil.core.commands import PagelessCommand


class Command(PagelessCommand):
    help = (
        "Run footage extraction jobs (export jobs) into signed evidence packages; "
        "--once runs what is waiting and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run waiting jobs, then exit")
        parser.add_argument("--idle", type=float, default=2.0, help="seconds between polls")

    def handle(self, *args: Any, **opts: Any) -> None:
        from vigil.core.management.commands.serve import ensure_migrated

        ensure_migrated()
        if opts["once"]:
            n = worker.run_pending()
            self.stdout.write(f"{n} job(s) run")
            return
        signal.signal(signal.SIGTERM, lambda *_a: worker.STOP.set())
        signal.signal(signal.SIGINT, lambda *_a: worker.STOP.set())
        self.stdout.write(f"export worker {worker.worker_name()} waiting for jobs")
        worker.loop(idle=opts["idle"])
