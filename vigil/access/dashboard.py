"""The footage requests card on the dashboard: what waits for this person."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from vigil.access import services
from vigil.access.models import OPEN_STATUSES, JobState, RequestForm, RequestStatus
from vigil.accounts.models import User
from vigil.authz.rules import Action
from vigil.authz.services import can


def cards(user: User) -> list[dict[str, Any]]:
    if not (can(user, Action.REQUEST_FILE) or can(user, Action.REQUEST_VIEW_ALL)):
        return []
    now = timezone.now()
    visible = services.visible_requests(user)
    to_decide = []
    if can(user, Action.REQUEST_DECIDE):
        to_decide = [
            r
            for r in visible.filter(status__in=OPEN_STATUSES).order_by("submitted_at")[:50]
            if user.pk not in (r.requester_id, r.filed_by_id)
            and not r.decisions.filter(decided_by=user).exists()
        ][:8]
    overdue = [
        r
        for r in visible.filter(status__in=(*OPEN_STATUSES, RequestStatus.APPROVED))
        if (r.reply_due and r.replied_at is None and r.reply_due < now)
        or (r.access_due and r.provided_at is None and r.access_due < now)
    ][:8]
    to_extract = list(
        visible.filter(
            status=RequestStatus.APPROVED,
            form=RequestForm.COPY,
            extractor=user,
            packages__isnull=True,
        ).exclude(exports__state__in=(JobState.QUEUED, JobState.RUNNING))[:8]
    )
    mine = list(visible.filter(requester=user).order_by("-submitted_at")[:5])
    if not (to_decide or overdue or to_extract or mine):
        return []
    return [
        {
            "template": "access/_dashboard_card.html",
            "to_decide": to_decide,
            "overdue": overdue,
            "to_extract": to_extract,
            "mine": mine,
        }
    ]
