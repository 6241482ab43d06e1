"""Base class for the commands that serve no page."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class PagelessCommand(BaseCommand):
    """A management command that serves no page: every `vigil` command but `serve`,
    `init` and `demo`.

    Django's system checks import every URLconf and view, and with them OpenCV, NumPy and
    PyAV: about 50 MB and a slower start for a process that never renders a page. The web
    server, `vigil init` and `vigil demo` keep the checks."""

    requires_system_checks: list[str] = []
