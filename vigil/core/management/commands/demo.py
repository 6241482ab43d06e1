from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from vigil.core.supervisor import Child, Supervisor


class Command(BaseCommand):
    help = (
        "Seed the demo school if needed and run everything: the web UI, simulated cameras "
        "serving real footage over RTSP, and the recorders."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.VIGIL.server.host)
        parser.add_argument("--port", type=int, default=settings.VIGIL.server.port)
        parser.add_argument(
            "--cameras",
            type=int,
            default=8,
            help="how many cameras to simulate and record (max 86)",
        )
        parser.add_argument("--web-only", action="store_true", help="run only the web UI")

    def handle(self, *args: Any, **opts: Any) -> None:
        call_command("init", demo=True, stdout=self.stdout)
        children = [Child("web", ["serve", "--host", opts["host"], "--port", str(opts["port"])])]
        children += demo_workers(opts)
        self.stdout.write(
            f"\nOpen http://{opts['host']}:{opts['port']} — Ctrl-C stops everything.\n"
        )
        Supervisor(children, log=self.stdout.write).run()


def demo_workers(opts: dict[str, Any]) -> list[Child]:
    """The simulated cameras, recorders, analysers and export worker that run beside the
    web UI."""
    if opts.get("web_only"):
        return []
    from django.core.management import get_commands

    available = get_commands()
    count = max(1, min(86, int(opts.get("cameras") or 8)))
    workers: list[Child] = []
    if "simulate" in available:
        workers.append(Child("cameras", ["simulate", "--demo", "--cameras", str(count)]))
    if "record" in available:
        workers.append(Child("recorders", ["record", "--all", "--demo-cameras", str(count)]))
    if "analyze" in available:
        workers.append(Child("analysis", ["analyze", "--demo-cameras", str(count)]))
    if "alerts" in available:
        # Escalation of unacknowledged alerts, e-mail and webhook delivery.
        workers.append(Child("alerts", ["alerts", "dispatch", "--loop"]))
    if "retention" in available:
        # Retention sweep of every volume, hourly coverage and signed daily reports.
        workers.append(Child("retention", ["retention", "sweep", "--loop"]))
    if "export_worker" in available:
        # Footage extraction jobs into signed evidence packages (Art. 5).
        workers.append(Child("exports", ["export-worker"]))
    return workers
