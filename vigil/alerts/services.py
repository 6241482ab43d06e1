"""Raising and clearing alerts. De-duplicated: a repeat of an open alert updates it."""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.alerts.models import Alert, Severity
from vigil.audit.services import record
from vigil.school.models import Camera, Recorder


def open_key(camera: Camera | None, recorder: Recorder | None, cause: str) -> str:
    return f"{camera.pk if camera else '-'}:{recorder.pk if recorder else '-'}:{cause}"


def raise_alert(
    *,
    cause: str,
    severity: str,
    title: str,
    message: str = "",
    camera: Camera | None = None,
    recorder: Recorder | None = None,
    audience: tuple[str, ...] = ("security_head", "security_guard"),
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> tuple[Alert, bool]:
    """Open an alert, or refresh the open one for the same subject and cause.

    Returns the alert and whether it was newly opened.
    """
    if severity not in Severity.values:
        raise ValueError(f"unknown severity {severity!r}")
    now = timezone.now()
    actor = actor or Actor.system("alerts")
    open_qs = Alert.objects.exclude(state=Alert.State.RESOLVED).filter(
        camera=camera, recorder=recorder, cause=cause
    )
    for _attempt in range(2):
        try:
            with transaction.atomic():
                existing = open_qs.select_for_update().first()
                if existing is not None:
                    existing.last_seen_at = now
                    existing.occurrences += 1
                    existing.message = message or existing.message
                    if severity == Severity.CRITICAL:
                        existing.severity = severity
                    existing.save(
                        update_fields=["last_seen_at", "occurrences", "message", "severity"]
                    )
                    return existing, False
                alert = Alert.objects.create(
                    open_key=open_key(camera, recorder, cause),
                    camera=camera,
                    recorder=recorder,
                    cause=cause,
                    severity=severity,
                    title=title[:300],
                    message=message,
                    audience=",".join(audience),
                    department=camera.area.department if camera is not None else None,
                    detail_json=json.dumps(detail or {}, ensure_ascii=False, default=str),
                    opened_at=now,
                    last_seen_at=now,
                )
                record(
                    actor,
                    "alert.raise",
                    alert,
                    detail={"cause": cause, "severity": severity, "audience": list(audience)},
                )
                return alert, True
        except IntegrityError:  # raced with another process opening the same alert
            continue
    existing = open_qs.first()
    assert existing is not None
    return existing, False


def clear_alert(
    *, cause: str, camera: Camera | None = None, recorder: Recorder | None = None, note: str = ""
) -> int:
    """Resolve the open alert for a subject and cause when the condition is gone."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for alert in (
            Alert.objects.select_for_update()
            .exclude(state=Alert.State.RESOLVED)
            .filter(camera=camera, recorder=recorder, cause=cause)
        ):
            alert.state = Alert.State.RESOLVED
            alert.open_key = None
            alert.resolved_at = now
            alert.resolution_note = note or "condition cleared"
            alert.save(update_fields=["state", "open_key", "resolved_at", "resolution_note"])
            record(Actor.system("alerts"), "alert.clear", alert, detail={"cause": cause})
            count += 1
    return count
