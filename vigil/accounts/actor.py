"""Who is acting, and from where: passed to every service call.

Services use it for the permission check and the audit entry; views build it from the
request, management commands from the operating-system user.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest

    from vigil.accounts.models import User


def client_ip(request: HttpRequest) -> str | None:
    """The client address. Behind a proxy (server.https) the first X-Forwarded-For hop."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


@dataclass(frozen=True)
class Actor:
    user: User | None
    ip: str | None = None
    via: str = "web"  # web, api, cli, system
    label: str = ""  # for non-user actors: "cli:root", "system:recorder"

    @classmethod
    def from_request(cls, request: HttpRequest, via: str = "web") -> Actor:
        user = request.user if request.user.is_authenticated else None
        return cls(user=user, ip=client_ip(request), via=via)

    @classmethod
    def cli(cls, user: User | None = None) -> Actor:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
        return cls(user=user, via="cli", label=f"cli:{who}")

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(user=None, via="system", label=f"system:{component}")

    @property
    def username(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.label or "anonymous"

    @property
    def role(self) -> str:
        return self.user.role if self.user is not None else ""
