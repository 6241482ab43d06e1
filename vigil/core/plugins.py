"""Optional per-app modules: ``vigil/<app>/<name>.py`` that an app may provide to plug
into another (``nav``, ``dashboard``, ``timeline`` ...).

Found once per process: the app registry does not change while it runs, so a missing
module is not looked for again on every request.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from types import ModuleType

from django.apps import apps


@cache
def app_modules(name: str) -> tuple[ModuleType, ...]:
    """The ``<app>.<name>`` module of each vigil app that has one, in app order.

    An app without it is skipped; a module that exists but fails to import raises (a
    broken contributor is a bug to see, not a feature to hide), and is tried again on
    the next call."""
    found: list[ModuleType] = []
    for config in apps.get_app_configs():
        if not config.name.startswith("vigil."):
            continue
        path = f"{config.name}.{name}"
        try:
            found.append(import_module(path))
        except ModuleNotFoundError as exc:
            if exc.name != path:
                raise
    return tuple(found)


def app_label(module: ModuleType) -> str:
    """The label of the app a module belongs to."""
    config = apps.get_containing_app_config(module.__name__)
    return config.label if config is not None else module.__name__
