from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from vigil.accounts import services
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.core.commands import PagelessCommand
from vigil.school.validation import ValidationFailed


class Command(PagelessCommand):
    help = "Add, list and reset user accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="{add,list,reset-password,reset-2fa}"
        )
        add = sub.add_parser("add", help="create an account; prints its initial password")
        add.add_argument("username")
        add.add_argument("--role", required=True, choices=Role.values)
        add.add_argument("--name", default="", help="full name")
        add.add_argument("--department", default=None, help="department code")
        add.add_argument("--email", default="")
        add.add_argument("--organisation", default="")
        add.add_argument("--superuser", action="store_true", help="may also use /django-admin/")
        sub.add_parser("list", help="list accounts")
        rp = sub.add_parser("reset-password", help="set a new random password")
        rp.add_argument("username")
        r2 = sub.add_parser("reset-2fa", help="remove the two-factor device (re-enrol at sign-in)")
        r2.add_argument("username")

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account named '{username}'")
        return user

    def handle(self, *args: Any, **opts: Any) -> None:
        actor = Actor.cli()
        action = opts["action"]
        try:
            if action == "add":
                user, password = services.create_user(
                    actor,
                    username=opts["username"],
                    role=opts["role"],
                    full_name=opts["name"],
                    department=opts["department"],
                    email=opts["email"],
                    organisation=opts["organisation"],
                )
                if opts["superuser"]:
                    user.is_staff = user.is_superuser = True
                user.must_change_password = True
                user.save()
                self.stdout.write(
                    f"Created {user.username} ({user.get_role_display()}). "
                    f"Initial password: {password}"
                )
            elif action == "list":
                for u in User.objects.select_related("department").order_by("role", "username"):
                    dept = u.department.code if u.department else "-"
                    state = "active" if u.is_active else "inactive"
                    self.stdout.write(
                        f"{u.username:<18} {u.role:<20} {dept:<8} {state}  {u.full_name}"
                    )
            elif action == "reset-password":
                password = services.reset_password(actor, self._user(opts["username"]))
                self.stdout.write(f"New password for {opts['username']}: {password}")
            elif action == "reset-2fa":
                services.reset_two_factor(actor, self._user(opts["username"]))
                self.stdout.write(f"Two-factor device removed for {opts['username']}.")
        except ValidationFailed as exc:
            raise CommandError("; ".join(str(e) for e in exc.errors)) from exc
