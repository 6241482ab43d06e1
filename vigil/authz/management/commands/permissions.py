from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from vigil.authz.docs import permissions_markdown


class Command(BaseCommand):
    help = "Print the permission matrix (docs/permissions.md is this output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--markdown", action="store_true", help="Markdown (the default)")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(permissions_markdown(), ending="")
