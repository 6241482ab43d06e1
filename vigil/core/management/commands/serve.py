from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def ensure_migrated() -> None:
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError(
            "the database is not initialised or not up to date: run 'vigil init' first"
        )


class Command(BaseCommand):
    help = "Run the Vigil web application (ASGI, uvicorn)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.VIGIL.server.host)
        parser.add_argument("--port", type=int, default=settings.VIGIL.server.port)

    def handle(self, *args: Any, **opts: Any) -> None:
        import uvicorn

        ensure_migrated()
        self.stdout.write(f"Vigil web on http://{opts['host']}:{opts['port']}")
        uvicorn.run(
            "vigil.asgi:application",
            host=opts["host"],
            port=opts["port"],
            log_level="warning",
            proxy_headers=settings.VIGIL.server.https,
            lifespan="off",
            # Live streams never finish by themselves: on SIGTERM give open responses a
            # few seconds, then close them, instead of waiting for every viewer to leave.
            timeout_graceful_shutdown=5,
        )
