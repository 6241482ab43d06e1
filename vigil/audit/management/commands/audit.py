from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.audit import services
from vigil.core.commands import PagelessCommand


class Command(PagelessCommand):
    help = "Verify the audit chain: exits 0 when intact, non-zero naming the first broken entry."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{verify}")
        ver = sub.add_parser("verify", help="check every entry's hash and link")
        ver.add_argument(
            "--anchor", type=Path, help="the anchor copy of hashes (default: in the data dir)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        result = services.verify(opts.get("anchor"))
        if result.ok:
            self.stdout.write(f"audit chain intact: {result.entries} entries")
            return
        for problem in result.problems[1:]:
            self.stderr.write(str(problem))
        raise CommandError(f"audit chain broken at {result.problems[0]}")
