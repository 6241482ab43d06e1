from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from vigil.authz.docs import permissions_markdown
from vigil.core.commands import PagelessCommand


class Command(PagelessCommand):
    help = "Print the permission matrix (docs/permissions.md is this output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--markdown", action="store_true", help="Markdown (the default)")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(permissions_markdown(), ending="")
