from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.core.commands import PagelessCommand
from vigil.school import services
from vigil.school.models import Camera
from vigil.school.validation import ValidationFailed


class Command(PagelessCommand):
    help = "Add and list cameras."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{add,list}")
        add = sub.add_parser("add", help="add a camera")
        add.add_argument("code")
        add.add_argument("--name", required=True)
        add.add_argument("--area", required=True, help="area code")
        add.add_argument("--recorder", required=True, help="recorder code")
        add.add_argument("--main", required=True, help="main stream URL (rtsp://...)")
        add.add_argument("--sub", default="", help="sub-stream URL")
        add.add_argument("--codec", default="h264", choices=["h264", "h265"])
        add.add_argument("--width", type=int, default=1920)
        add.add_argument("--height", type=int, default=1080)
        add.add_argument("--fps", type=int, default=15)
        add.add_argument("--bitrate-kbps", type=int, default=2048)
        add.add_argument("--supplier", default="")
        add.add_argument("--install-date", default="", metavar="YYYY-MM-DD")
        add.add_argument(
            "--inspection-passed",
            default="",
            metavar="YYYY-MM-DD",
            help="date of a passed inspection (Art. 2.1: needed to count as in service)",
        )
        lst = sub.add_parser("list", help="list cameras")
        lst.add_argument("--format", choices=["table", "json"], default="table")
        lst.add_argument("--recorder", default="")
        lst.add_argument("--area", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        actor = Actor.cli()
        if opts["action"] == "add":
            raw = {
                "code": opts["code"],
                "name": opts["name"],
                "area": opts["area"],
                "recorder": opts["recorder"],
                "main_url": opts["main"],
                "sub_url": opts["sub"],
                "codec": opts["codec"],
                "width": opts["width"],
                "height": opts["height"],
                "fps": opts["fps"],
                "bitrate_kbps": opts["bitrate_kbps"],
                "supplier": opts["supplier"],
                "install_date": opts["install_date"],
                "inspection_date": opts["inspection_passed"],
                "inspection_result": "passed" if opts["inspection_passed"] else "",
            }
            try:
                camera = services.add_camera(actor, raw)
            except ValidationFailed as exc:
                raise CommandError("; ".join(str(e) for e in exc.errors)) from exc
            status = (
                "in service"
                if camera.counts_in_service
                else "not counted in service (no passed inspection)"
            )
            self.stdout.write(
                f"Added {camera.code} ({camera.name}) on {camera.recorder.code}: {status}"
            )
            return
        require(actor, Action.SITE_VIEW)
        qs = Camera.objects.with_inspection().select_related("area", "area__department", "recorder")
        if opts["recorder"]:
            qs = qs.filter(recorder__code=opts["recorder"])
        if opts["area"]:
            qs = qs.filter(area__code=opts["area"])
        rows = [
            {
                "code": c.code,
                "name": c.name,
                "area": c.area.code,
                "department": c.area.department.code,
                "recorder": c.recorder.code,
                "codec": c.codec,
                "resolution": f"{c.width}x{c.height}",
                "state": c.state,
                "inspection": getattr(c, "latest_inspection_result", None) or "none",
                "main_url": c.main_url,
            }
            for c in qs.order_by("code")
        ]
        if opts["format"] == "json":
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        cols = ["code", "name", "area", "recorder", "codec", "resolution", "state", "inspection"]
        widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
        self.stdout.write("  ".join(c.upper().ljust(widths[c]) for c in cols))
        for r in rows:
            self.stdout.write("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        self.stdout.write(f"{len(rows)} camera(s)")
