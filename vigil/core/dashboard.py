"""What the dashboard shows, per role (read-only queries)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from vigil.accounts.models import User
from vigil.authz.rules import Action
from vigil.authz.services import can
from vigil.core.plugins import app_modules
from vigil.school.models import Camera, Inspection, Recorder


def extra_cards(user: User) -> list[dict[str, Any]]:
    """Cards other apps add to the dashboard: ``vigil/<app>/dashboard.py: cards(user)``,
    each a dict with a ``template`` and its data."""
    cards: list[dict[str, Any]] = []
    for module in app_modules("dashboard"):
        if module.__name__ == __name__:
            continue
        cards.extend(module.cards(user))
    return cards


def summary(user: User) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if can(user, Action.SITE_VIEW):
        cams = Camera.objects.with_inspection()
        counts = cams.aggregate(
            total=Count("pk"),
            in_service=Count(
                "pk",
                filter=Q(
                    state=Camera.State.IN_SERVICE,
                    latest_inspection_result=Inspection.Result.PASSED,
                ),
            ),
            maintenance=Count("pk", filter=Q(state=Camera.State.MAINTENANCE)),
            decommissioned=Count("pk", filter=Q(state=Camera.State.DECOMMISSIONED)),
        )
        counts["not_inspected"] = (
            cams.exclude(state=Camera.State.DECOMMISSIONED)
            .exclude(latest_inspection_result=Inspection.Result.PASSED)
            .count()
        )
        data["cameras"] = counts
        data["recorders"] = [
            {
                "recorder": r,
                "cameras": r.camera_count,
                "capacity_tb": r.capacity_bytes / 1e12,
            }
            for r in Recorder.objects.annotate(camera_count=Count("cameras")).prefetch_related(
                "volumes"
            )
        ]
    if can(user, Action.AUDIT_VIEW):
        from vigil.audit.models import AuditEntry

        data["recent_audit"] = list(AuditEntry.objects.order_by("-seq")[:8])
    return data
