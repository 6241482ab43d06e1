from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from vigil.core.keys import ensure_site_key, fingerprint


def print_demo_accounts(out: Any, result: Any, url: str) -> None:
    out.write("")
    out.write(f"Demo school ready: {result.cameras} cameras. Web UI: {url}")
    out.write("Accounts (passwords shown once; also in " + str(result.credentials_file) + "):")
    for u in result.users:
        out.write(f"  {u.username:<15} {u.password:<18} {u.role}")
    admin = next((u for u in result.users if u.username == "admin"), None)
    if admin is not None:
        out.write("")
        out.write(f"Administrator login: admin / {admin.password}")
    out.write(
        "Roles with two-factor sign-in (principal, board, IT, security head): add the TOTP secret "
        "from the credentials file to an authenticator app, or print the current code with "
        "'vigil demo-otp USERNAME'."
    )


class Command(BaseCommand):
    help = "Create or migrate Vigil's database in $VIGIL_DATA_DIR; --demo seeds the demo school."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--demo", action="store_true", help="seed Phúc Đồng kindergarten (86 cameras)"
        )
        parser.add_argument("--school-name", default="", help="name of the school (first run)")

    def handle(self, *args: Any, **opts: Any) -> None:
        root: Path = settings.PATHS.root
        probe = root / ".write-test"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise CommandError(
                f"the data directory {root} is not writable: {exc.strerror}"
            ) from exc
        db: dict[str, Any] = settings.DATABASES["default"]
        anchor = settings.PATHS.audit / "anchor.log"
        if db["ENGINE"].endswith("sqlite3") and not Path(db["NAME"]).exists() and anchor.exists():
            # A new database starts a new chain; keep the old chain's anchor copy aside.
            anchor.rename(anchor.with_name(f"anchor.log.{int(time.time())}"))
        call_command("migrate", interactive=False, verbosity=0)
        key = ensure_site_key()
        self.stdout.write(f"Database ready ({db['ENGINE'].rsplit('.', 1)[-1]}): {db['NAME']}")
        self.stdout.write(f"Site signing key: {key} (fingerprint {fingerprint()})")
        from vigil.school.models import School

        if opts["demo"]:
            from vigil.core.demo import seed

            try:
                result = seed()
            except RuntimeError as exc:
                raise CommandError(str(exc)) from exc
            if result.created:
                host, port = settings.VIGIL.server.host, settings.VIGIL.server.port
                print_demo_accounts(self.stdout, result, f"http://{host}:{port}")
            else:
                self.stdout.write(
                    f"The demo school is already seeded ({result.cameras} cameras); "
                    "accounts are in "
                    f"{settings.PATHS.root / 'demo-credentials.txt'}"
                )
        elif not School.objects.exists():
            School.objects.create(name=opts["school_name"] or "School")
            self.stdout.write(
                "Next: import the inventory ('vigil inventory import site.yaml') and create the "
                "first account ('vigil user add NAME --role it_staff')."
            )
