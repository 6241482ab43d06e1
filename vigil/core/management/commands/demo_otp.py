from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from vigil.core.commands import PagelessCommand
from vigil.school.models import School


class Command(PagelessCommand):
    help = "Print a demo user's current TOTP code. Refused outside the demo installation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not School.objects.filter(is_demo=True).exists():
            raise CommandError("this is not a demo installation")
        device = TOTPDevice.objects.filter(user__username=opts["username"], confirmed=True).first()
        if device is None:
            raise CommandError(f"'{opts['username']}' has no two-factor device")
        code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
        remaining = device.step - int(time.time() - device.t0) % device.step
        self.stdout.write(f"{code:0{device.digits}d}  (valid for {remaining} s)")
