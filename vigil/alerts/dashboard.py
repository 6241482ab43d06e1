"""The alerts card on the dashboard: what is open now for this person."""

from __future__ import annotations

from typing import Any

from vigil.accounts.models import User
from vigil.alerts import services
from vigil.alerts.models import Alert
from vigil.authz.rules import Action
from vigil.authz.services import can


def cards(user: User) -> list[dict[str, Any]]:
    if not can(user, Action.ALERT_VIEW):
        return []
    unresolved = services.visible_alerts(user).exclude(state=Alert.State.RESOLVED)
    return [
        {
            "template": "alerts/_dashboard_card.html",
            "open": unresolved.filter(state=Alert.State.OPEN).count(),
            "acknowledged": unresolved.filter(state=Alert.State.ACKNOWLEDGED).count(),
            "latest": list(unresolved.order_by("-opened_at")[:6]),
        }
    ]
