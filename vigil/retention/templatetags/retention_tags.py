"""Formatting for the retention pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.recording.models import Gap
from vigil.retention import planner

register = template.Library()


@register.filter
def days(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= planner.INFINITE_DAYS:
        return "∞"
    return f"{value:.1f}"


@register.filter
def si_bytes(value: float | None) -> str:
    """Decimal units, as disks are sold and as the regulation counts (12 TB = 12 x 10^12)."""
    n = float(value or 0)
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


@register.filter
def rate_source(value: str) -> str:
    labels = {
        "measured": _("measured footage"),
        "health": _("live bitrate"),
        "spec": _("specification"),
        "what-if": _("what if"),
    }
    return labels.get(value, value)


@register.filter
def hms(seconds: float | None) -> str:
    s = round(seconds or 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@register.filter
def coverage_percent(row: dict[str, Any]) -> str:
    expected = row.get("expected_seconds") or 0
    if not expected:
        return "—"
    return f"{100.0 * min(row['recorded_seconds'], expected) / expected:.1f}"


@register.filter
def gap_cause(value: str) -> str:
    try:
        return str(Gap.Cause(value).label)
    except ValueError:
        return value


@register.filter
def local_iso(value: str | None) -> str:
    if not value:
        return ""
    return timezone.localtime(datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")
