from __future__ import annotations

from django import template

from vigil.alerts.causes import cause_label as _cause_label

register = template.Library()


@register.filter
def cause_label(cause: str) -> str:
    return _cause_label(cause)
