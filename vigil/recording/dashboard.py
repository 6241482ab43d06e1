"""The recording card on the dashboard: how many cameras are recording right now."""

from __future__ import annotations

from typing import Any

from vigil.accounts.models import User
from vigil.authz.rules import Action
from vigil.authz.services import cameras_for, can
from vigil.recording.health import statuses


def cards(user: User) -> list[dict[str, Any]]:
    if not can(user, Action.HEALTH_VIEW):
        return []
    rows = statuses(cameras_for(user, Action.HEALTH_VIEW).exclude(state="decommissioned"))
    counts = {
        k: sum(1 for r in rows if r.state == k) for k in ("online", "offline", "not_recorded")
    }
    offline = [r for r in rows if r.state == "offline"][:8]
    return [{"template": "recording/_dashboard_card.html", "counts": counts, "offline": offline}]
