"""The timeline hook: other apps put marks (motion, alerts, ...) on the playback timeline.

An app contributes by providing ``vigil/<app>/timeline.py`` with::

    def marks(camera: Camera, start: datetime, end: datetime) -> list[dict]:
        return [{"start": datetime, "end": datetime | None, "kind": "motion",
                 "label": "Motion"}, ...]

``start``/``end`` are aware datetimes (UTC) and only marks overlapping [start, end) are
wanted; ``kind`` is a short token the player styles (``motion``, ``alert``, ``tamper``
...), ``label`` is shown on hover. A module that fails is logged and skipped: a broken
contributor must not take playback down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from vigil.core.plugins import app_label, app_modules
from vigil.school.models import Camera

log = logging.getLogger("vigil.live.marks")

MarksFn = Callable[[Camera, datetime, datetime], list[dict[str, Any]]]


@lru_cache(maxsize=1)
def contributors() -> tuple[tuple[str, MarksFn], ...]:
    """(app label, marks function) for every app that has a ``timeline`` module."""
    found: list[tuple[str, MarksFn]] = []
    for module in app_modules("timeline"):
        fn = getattr(module, "marks", None)
        if callable(fn):
            found.append((app_label(module), fn))
    return tuple(found)


def collect_marks(camera: Camera, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every contributor's marks for ``camera`` in [start, end), sorted by start."""
    out: list[dict[str, Any]] = []
    for label, fn in contributors():
        try:
            items = fn(camera, start, end)
        except Exception:
            log.exception("timeline marks from %s failed", label)
            continue
        for item in items:
            at = item.get("start")
            if not isinstance(at, datetime):
                continue
            stop = item.get("end")
            if (stop or at) < start or at >= end:
                continue
            out.append(
                {
                    "start": at,
                    "end": stop if isinstance(stop, datetime) else None,
                    "kind": str(item.get("kind", "mark"))[:32],
                    "label": str(item.get("label", ""))[:200],
                    "source": label,
                }
            )
    out.sort(key=lambda m: m["start"])
    return out
