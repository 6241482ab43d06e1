from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.core.commands import PagelessCommand
from vigil.recording.health import statuses
from vigil.school.models import Camera


class Command(PagelessCommand):
    help = "Camera health: online/offline, fps, bitrate, last frame, reconnects, recorded today."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--recorder", default="")
        parser.add_argument("--all", action="store_true", help="include cameras no recorder runs")

    def handle(self, *args: Any, **opts: Any) -> None:
        require(Actor.cli(), Action.HEALTH_VIEW)
        cams = Camera.objects.exclude(state=Camera.State.DECOMMISSIONED)
        if opts["recorder"]:
            cams = cams.filter(recorder__code=opts["recorder"])
        rows = statuses(cams)
        if not opts["all"]:
            rows = [r for r in rows if r.state != "not_recorded"] or rows
        if opts["format"] == "json":
            data = [
                {
                    "camera": r.code,
                    "name": r.name,
                    "recorder": r.recorder,
                    "state": r.state,
                    "fps": r.fps,
                    "bitrate_bps": r.bitrate_bps,
                    "last_frame_at": r.last_frame_at.isoformat() if r.last_frame_at else None,
                    "reconnects_last_hour": r.reconnects_last_hour,
                    "recorded_today_s": r.recorded_today_s,
                    "expected_today_s": r.expected_today_s,
                    "last_error": r.last_error,
                }
                for r in rows
            ]
            self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
            return
        header = (
            f"{'CAMERA':<9} {'STATE':<13} {'FPS':>5} {'KBIT/S':>7} {'LAST FRAME':<19} "
            f"{'RECONN/H':>8} {'TODAY':>13}  ERROR"
        )
        self.stdout.write(header)
        for r in rows:
            last = (
                timezone.localtime(r.last_frame_at).strftime("%Y-%m-%d %H:%M:%S")
                if r.last_frame_at
                else "-"
            )
            today = f"{r.coverage_today * 100:5.1f}% of day"
            self.stdout.write(
                f"{r.code:<9} {r.state:<13} {r.fps:>5.1f} {r.bitrate_bps / 1000:>7.0f} {last:<19} "
                f"{r.reconnects_last_hour:>8} {today:>13}  {r.last_error[:60]}"
            )
        online = sum(1 for r in rows if r.state == "online")
        self.stdout.write(f"{online}/{len(rows)} online")
