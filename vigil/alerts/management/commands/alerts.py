from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import close_old_connections

from vigil.alerts import notify
from vigil.alerts.causes import cause_label
from vigil.alerts.models import Alert
from vigil.core.commands import PagelessCommand

log = logging.getLogger("vigil.alerts")


class Command(PagelessCommand):
    help = (
        "Alerts: 'dispatch' escalates unacknowledged alerts and delivers e-mails and "
        "webhooks (--loop keeps doing it); 'list' prints the unresolved alerts; "
        "'webhook-secret' prints the secret that signs webhook calls."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        d = sub.add_parser("dispatch", help="escalate and deliver what is due")
        d.add_argument("--loop", action="store_true", help="keep running (a worker)")
        sub.add_parser("list", help="unresolved alerts")
        sub.add_parser("webhook-secret", help="print the webhook signing secret")

    def handle(self, *args: Any, **opts: Any) -> None:
        what = opts["what"]
        if what == "list":
            for a in Alert.objects.exclude(state=Alert.State.RESOLVED).select_related("camera"):
                where = a.camera.code if a.camera else (a.recorder_id or "-")
                self.stdout.write(
                    f"#{a.pk}\t{a.opened_at:%Y-%m-%d %H:%M:%S}\t{a.severity}\t{a.state}\t"
                    f"{where}\t{cause_label(a.cause)}"
                )
            return
        if what == "webhook-secret":
            self.stdout.write(notify.webhook_secret())
            return
        logging.getLogger("vigil").setLevel(logging.INFO)
        if not opts["loop"]:
            escalated, result = notify.dispatch()
            self.stdout.write(
                f"escalated {escalated}; sent {result.sent}, retrying {result.retried}, "
                f"failed {result.failed}"
            )
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        interval = settings.VIGIL.alerts.dispatch_interval_seconds
        self.stdout.write(f"Dispatching alerts every {interval:g} s")
        while not stop.is_set():
            close_old_connections()
            try:
                notify.dispatch()
            except Exception:  # the loop must survive a database hiccup
                log.exception("alert dispatch failed")
            stop.wait(interval)
