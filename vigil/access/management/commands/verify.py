"""``vigil verify PACKAGE``: check a signed evidence package (.zip or directory).

Exit 0 when the package is valid, 1 when something was altered (each alteration is
listed), 2 when it cannot be read. Run on the school's server, the key is also compared
with the site's and the manifest and custody log with the site's records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from vigil.access import package as pkg
from vigil.core.commands import PagelessCommand


class Command(PagelessCommand):
    help = "Verify a signed evidence package (.zip or directory): 'valid' or what was altered."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("package", help="the package .zip or its directory")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--offline",
            action="store_true",
            help="check the package alone, without the site's key and records",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["package"])
        if not path.exists():
            raise CommandError(f"{path}: no such file or directory")
        report = None
        if not opts["offline"]:
            try:
                from vigil.access.services import verify_on_site

                report = verify_on_site(path)
            except DatabaseError:  # no site database here: the package alone
                report = None
        if report is None:
            report = pkg.verify(path)
        if opts["format"] == "json":
            self.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(pkg.render_text(report))
        if not report.ok:
            unreadable = report.manifest is None and not report.files_checked
            raise SystemExit(2 if unreadable else 1)
