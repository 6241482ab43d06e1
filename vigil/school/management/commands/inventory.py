from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.accounts.actor import Actor
from vigil.core.commands import PagelessCommand
from vigil.school import inventory


class Command(PagelessCommand):
    help = "Import or export the site inventory (CSV: cameras; YAML: the whole site)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{import,export}")
        imp = sub.add_parser("import", help="import a .csv or .yaml file (all rows or none)")
        imp.add_argument("file", type=Path)
        exp = sub.add_parser("export", help="write the inventory to stdout or a file")
        exp.add_argument("--format", choices=["csv", "yaml"], default="yaml")
        exp.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")

    def handle(self, *args: Any, **opts: Any) -> None:
        actor = Actor.cli()
        if opts["action"] == "import":
            try:
                result = inventory.import_inventory(actor, opts["file"])
            except inventory.ImportFailed as exc:
                for err in exc.errors:
                    sys.stderr.write(f"{err}\n")
                raise CommandError(
                    f"{len(exc.errors)} problem(s) in {opts['file'].name}; nothing was imported"
                ) from exc
            self.stdout.write(f"Imported {opts['file'].name}: {result.summary()}")
            return
        text = (
            inventory.export_csv(actor) if opts["format"] == "csv" else inventory.export_yaml(actor)
        )
        if opts["output"]:
            try:
                opts["output"].write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {opts['output']}: {exc.strerror}") from exc
            self.stderr.write(f"Wrote {opts['output']}")
        else:
            self.stdout.write(text, ending="")
