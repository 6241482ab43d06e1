from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.accounts.actor import Actor
from vigil.core.commands import PagelessCommand
from vigil.recording.check import check_all


class Command(PagelessCommand):
    help = (
        "Prove that catalog rows and segment files agree: every row without a matching file "
        "(existence, size, and SHA-256 with --hash), every file without a row. --repair "
        "finishes interrupted deletions, adopts orphan files and records missing files as "
        "gaps, never deleting footage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repair", action="store_true")
        parser.add_argument("--hash", action="store_true", help="also verify every file's SHA-256")
        parser.add_argument("--recorder", default=None, metavar="CODE")

    def handle(self, *args: Any, **opts: Any) -> None:
        reports = check_all(
            actor=Actor.cli(),
            repair=opts["repair"],
            verify_hash=opts["hash"],
            recorder=opts["recorder"],
        )
        bad = 0
        for report in reports:
            self.stdout.write(f"{report.volume}: {report.summary()}")
            for problem in report.unresolved[:200]:
                self.stdout.write(f"  {problem}")
            if len(report.unresolved) > 200:
                self.stdout.write(f"  ... and {len(report.unresolved) - 200} more")
            bad += len(report.unresolved)
        if bad:
            raise CommandError(f"{bad} problem(s) found")
        self.stdout.write("catalog and disk agree")
