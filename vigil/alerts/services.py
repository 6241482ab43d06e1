"""Alerts: raising (de-duplicated), handling by the desk, escalation and notification.

* ``raise_alert`` opens an alert or refreshes the open one for the same subject and
  cause (one unresolved alert per camera/recorder and cause, enforced by a unique
  ``open_key``). A new alert is routed (Art. 6, 7.1) to its audience roles and to the
  heads of the department that owns the camera's area, by e-mail and webhook.
* ``acknowledge`` and ``resolve`` are the desk's actions: permission ``alert.handle``
  on the alert's camera (department heads: their own department's cameras), audited in
  the same transaction. Resolving needs a note.
* ``escalate_due`` (run by ``vigil alerts dispatch``) sends alerts nobody acknowledged
  in time to the security head, then to the board (``[alerts]`` in vigil.toml).
* ``clear_alert`` resolves an alert whose condition is gone (the recorder's "camera
  offline"); ``end_condition`` only notes that the condition ended, for alerts a person
  must close (tampering: someone has to look at what happened).

Deliveries are written as :class:`~vigil.alerts.models.Notification` rows in the same
transaction as the event (an outbox) and sent by :mod:`vigil.alerts.notify`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.accounts.roles import Role
from vigil.alerts import snapshots
from vigil.alerts.models import Alert, Notification, Severity
from vigil.audit.services import record
from vigil.authz.rules import MATRIX, Action, Scope
from vigil.authz.services import AccessDenied, Decision, cameras_for, can, require
from vigil.school.models import Camera, Recorder

if TYPE_CHECKING:
    from vigil.accounts.models import User

#: who is told at each escalation level (level 0 is the alert's own audience)
ESCALATION_ROLES: dict[int, tuple[str, ...]] = {
    1: (Role.SECURITY_HEAD.value,),
    2: (Role.PRINCIPAL.value, Role.BOARD.value),
}
MAX_LEVEL = max(ESCALATION_ROLES)
NOTE_MAX = 2000


class AlertStateError(ValueError):
    """The action does not apply to the alert in its current state."""


def open_key(camera: Camera | None, recorder: Recorder | None, cause: str) -> str:
    return f"{camera.pk if camera else '-'}:{recorder.pk if recorder else '-'}:{cause}"


# --------------------------------------------------------------------------- raising
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
    snapshot_before: bytes | None = None,
    snapshot_after: bytes | None = None,
) -> tuple[Alert, bool]:
    """Open an alert, or refresh the open one for the same subject and cause.

    Returns the alert and whether it was newly opened. Snapshots (JPEG bytes) are kept
    with a new alert, and added to an open one that has none yet.
    """
    if severity not in Severity.values:
        raise ValueError(f"unknown severity {severity!r}")
    now = timezone.now()
    actor = actor or Actor.system("alerts")
    before = snapshots.store(snapshot_before) if snapshot_before else ""
    after = snapshots.store(snapshot_after) if snapshot_after else ""
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
                    existing.condition_ended_at = None
                    if severity == Severity.CRITICAL:
                        existing.severity = severity
                    existing.snapshot_before = existing.snapshot_before or before
                    existing.snapshot_after = existing.snapshot_after or after
                    if detail:
                        merged = {**json.loads(existing.detail_json or "{}"), **detail}
                        existing.detail_json = json.dumps(merged, ensure_ascii=False, default=str)
                    existing.save(
                        update_fields=[
                            "last_seen_at",
                            "occurrences",
                            "message",
                            "severity",
                            "condition_ended_at",
                            "snapshot_before",
                            "snapshot_after",
                            "detail_json",
                        ]
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
                    snapshot_before=before,
                    snapshot_after=after,
                )
                record(
                    actor,
                    "alert.raise",
                    alert,
                    detail={"cause": cause, "severity": severity, "audience": list(audience)},
                )
                _notify(alert, "raised", level=0)
                return alert, True
        except IntegrityError:  # raced with another process opening the same alert
            continue
    existing = open_qs.first()
    assert existing is not None
    return existing, False


def end_condition(
    *, cause: str, camera: Camera | None = None, recorder: Recorder | None = None
) -> int:
    """The detector no longer sees the condition; the alert stays open for the desk."""
    now = timezone.now()
    return (
        Alert.objects.exclude(state=Alert.State.RESOLVED)
        .filter(camera=camera, recorder=recorder, cause=cause, condition_ended_at__isnull=True)
        .update(condition_ended_at=now)
    )


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
            alert.condition_ended_at = alert.condition_ended_at or now
            alert.resolution_note = note or "condition cleared"
            alert.save(
                update_fields=[
                    "state",
                    "open_key",
                    "resolved_at",
                    "condition_ended_at",
                    "resolution_note",
                ]
            )
            record(Actor.system("alerts"), "alert.clear", alert, detail={"cause": cause})
            _notify(alert, "resolved", level=alert.escalation_level, email=False)
            count += 1
    return count


# --------------------------------------------------------------------------- who sees
def _site_wide(user: User | None, action: Action) -> bool:
    """Alerts without a camera (recorder, storage) are for roles that see every camera."""
    if user is None or not user.is_authenticated:
        return False
    return MATRIX.get(Role(user.role), {}).get(action) == Scope.ALL


def visible_alerts(user: User | None) -> QuerySet[Alert]:
    """The alerts ``user`` may see: their cameras' (Art. 6 for department heads), and
    camera-less ones for roles that see every camera."""
    qs = Alert.objects.select_related(
        "camera", "camera__area", "recorder", "department", "acknowledged_by", "resolved_by"
    )
    if user is None or not can(user, Action.ALERT_VIEW):
        return qs.none()
    cams = cameras_for(user, Action.ALERT_VIEW)
    cond = Q(camera__in=cams)
    if _site_wide(user, Action.ALERT_VIEW):
        cond |= Q(camera__isnull=True)
    return qs.filter(cond)


def may_handle(user: User | None, alert: Alert) -> bool:
    if alert.camera is None:
        return _site_wide(user, Action.ALERT_HANDLE)
    return can(user, Action.ALERT_HANDLE, alert.camera)


def open_count(user: User | None) -> int:
    """Unacknowledged alerts the user sees (the badge in the header)."""
    return visible_alerts(user).filter(state=Alert.State.OPEN).count()


# --------------------------------------------------------------------------- handling
def _require_handle(actor: Actor, alert: Alert) -> None:
    if alert.camera is None and not _site_wide(actor.user, Action.ALERT_HANDLE):
        # department-scoped roles: recorder and storage alerts are not theirs
        from vigil.audit.models import Outcome

        decision = Decision(
            False, _("Recorder and storage alerts are handled by the security desk."), "Art. 7.1"
        )
        record(
            actor,
            Action.ALERT_HANDLE.value,
            alert,
            outcome=Outcome.DENIED,
            detail={"via": "none", "reason": str(decision.reason)},
        )
        raise AccessDenied(decision)
    require(actor, Action.ALERT_HANDLE, alert.camera)


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise AlertStateError(
            _("The note is too long (at most %(n)d characters).") % {"n": NOTE_MAX}
        )
    return note


def acknowledge(actor: Actor, alert: Alert, note: str = "") -> Alert:
    """The desk has seen the alert and is on it: stops its escalation."""
    _require_handle(actor, alert)
    note = _clean_note(note)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != Alert.State.OPEN:
            raise AlertStateError(_("Only an open alert can be acknowledged."))
        alert.state = Alert.State.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor.user
        alert.acknowledgement_note = note
        alert.save(
            update_fields=["state", "acknowledged_at", "acknowledged_by", "acknowledgement_note"]
        )
        record(
            actor,
            "alert.acknowledge",
            alert,
            detail={"cause": alert.cause, "note": note, "level": alert.escalation_level},
        )
        _notify(alert, "acknowledged", level=alert.escalation_level, email=False)
    return alert


def resolve(actor: Actor, alert: Alert, note: str) -> Alert:
    """Close the alert with a note saying what was found and done."""
    _require_handle(actor, alert)
    note = _clean_note(note)
    if not note:
        raise AlertStateError(_("Say what was found and done: a note is required."))
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state == Alert.State.RESOLVED:
            raise AlertStateError(_("This alert is already resolved."))
        now = timezone.now()
        if alert.state == Alert.State.OPEN:  # resolving implies having seen it
            alert.acknowledged_at = now
            alert.acknowledged_by = actor.user
        alert.state = Alert.State.RESOLVED
        alert.open_key = None
        alert.resolved_at = now
        alert.resolved_by = actor.user
        alert.resolution_note = note
        alert.save(
            update_fields=[
                "state",
                "open_key",
                "acknowledged_at",
                "acknowledged_by",
                "resolved_at",
                "resolved_by",
                "resolution_note",
            ]
        )
        record(actor, "alert.resolve", alert, detail={"cause": alert.cause, "note": note})
        _notify(alert, "resolved", level=alert.escalation_level, email=False)
    return alert


# --------------------------------------------------------------------------- escalation
def escalation_deadlines(alert: Alert) -> dict[int, datetime]:
    cfg = settings.VIGIL.alerts
    return {
        1: alert.opened_at + timedelta(minutes=cfg.security_head_after_minutes),
        2: alert.opened_at + timedelta(minutes=cfg.board_after_minutes),
    }


def escalate_due(now: datetime | None = None) -> list[tuple[Alert, int]]:
    """Escalate every open (unacknowledged) alert whose next deadline passed."""
    cfg = settings.VIGIL.alerts
    now = now or timezone.now()
    first = now - timedelta(minutes=cfg.security_head_after_minutes)
    done: list[tuple[Alert, int]] = []
    candidates = Alert.objects.filter(
        state=Alert.State.OPEN,
        severity__in=list(cfg.escalate_severities),
        escalation_level__lt=MAX_LEVEL,
        opened_at__lte=first,
    ).values_list("pk", flat=True)
    for pk in list(candidates):
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=pk)
            if alert.state != Alert.State.OPEN:
                continue
            deadlines = escalation_deadlines(alert)
            while (
                alert.escalation_level < MAX_LEVEL and now >= deadlines[alert.escalation_level + 1]
            ):
                alert.escalation_level += 1
                alert.escalated_at = now
                alert.save(update_fields=["escalation_level", "escalated_at"])
                roles = ESCALATION_ROLES[alert.escalation_level]
                record(
                    Actor.system("alerts"),
                    "alert.escalate",
                    alert,
                    detail={
                        "level": alert.escalation_level,
                        "to": list(roles),
                        "unacknowledged_minutes": round(
                            (now - alert.opened_at).total_seconds() / 60, 1
                        ),
                    },
                )
                _notify(alert, "escalated", level=alert.escalation_level)
                done.append((alert, alert.escalation_level))
    return done


# --------------------------------------------------------------------------- routing
def recipients(alert: Alert, level: int) -> list[User]:
    """People told at ``level``: the audience roles (department heads only of the
    alert's department) at 0, then the escalation roles; only active users who may see
    the alert and have an e-mail address."""
    from vigil.accounts.models import User

    roles = alert.audience_roles if level == 0 else list(ESCALATION_ROLES.get(level, ()))
    qs = User.objects.filter(is_active=True, role__in=roles).exclude(email="")
    if Role.DEPARTMENT_HEAD.value in roles:
        qs = qs.exclude(Q(role=Role.DEPARTMENT_HEAD.value) & ~Q(department=alert.department))
    people = []
    for user in qs.order_by("username"):
        if alert.camera is not None:
            if can(user, Action.ALERT_VIEW, alert.camera):
                people.append(user)
        elif _site_wide(user, Action.ALERT_VIEW):
            people.append(user)
    return people


def site_url() -> str:
    cfg = settings.VIGIL
    if cfg.alerts.site_url:
        return cfg.alerts.site_url.rstrip("/")
    scheme = "https" if cfg.server.https else "http"
    return f"{scheme}://{cfg.server.host}:{cfg.server.port}"


def alert_url(alert: Alert) -> str:
    from django.urls import reverse

    return site_url() + reverse("alerts:detail", args=[alert.pk])


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """The JSON an integration receives (no pictures: they are footage of children)."""
    cam = alert.camera
    return {
        "event": f"alert.{event}",
        "alert": {
            "id": alert.pk,
            "cause": alert.cause,
            "severity": alert.severity,
            "state": alert.state,
            "title": alert.title,
            "message": alert.message,
            "camera": {"code": cam.code, "name": cam.name} if cam else None,
            "area": {"code": cam.area.code, "name": cam.area.name} if cam else None,
            "department": (
                {"code": alert.department.code, "name": alert.department.name}
                if alert.department
                else None
            ),
            "recorder": alert.recorder.code if alert.recorder else None,
            "opened_at": alert.opened_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat(),
            "condition_ended_at": (
                alert.condition_ended_at.isoformat() if alert.condition_ended_at else None
            ),
            "occurrences": alert.occurrences,
            "escalation_level": alert.escalation_level,
            "acknowledged_by": (
                alert.acknowledged_by.get_username() if alert.acknowledged_by else None
            ),
            "resolved_by": alert.resolved_by.get_username() if alert.resolved_by else None,
            "resolution_note": alert.resolution_note,
            "url": alert_url(alert),
        },
    }


def _notify(alert: Alert, event: str, *, level: int, email: bool = True) -> list[Notification]:
    """Queue the deliveries of one event (inside the caller's transaction)."""
    from vigil.alerts import notify

    now = timezone.now()
    rows: list[Notification] = []
    if email and settings.VIGIL.email.host:
        for user in recipients(alert, level):
            subject, body = notify.render_email(alert, event, level, user)
            rows.append(
                Notification(
                    alert=alert,
                    event=event,
                    level=level,
                    channel=Notification.Channel.EMAIL,
                    target=user.email,
                    recipient=user,
                    payload_json=json.dumps({"subject": subject, "body": body}, ensure_ascii=False),
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    body_json = json.dumps(payload(alert, event), ensure_ascii=False, sort_keys=True)
    for url in settings.VIGIL.alerts.webhook_urls:
        rows.append(
            Notification(
                alert=alert,
                event=event,
                level=level,
                channel=Notification.Channel.WEBHOOK,
                target=url,
                payload_json=body_json,
                next_attempt_at=now,
                created_at=now,
            )
        )
    Notification.objects.bulk_create(rows)
    return rows


def history(alert: Alert) -> list[dict[str, Any]]:
    """What happened to the alert, from the audit log and its deliveries, oldest first."""
    from vigil.audit.models import AuditEntry

    items: list[dict[str, Any]] = []
    for entry in AuditEntry.objects.filter(
        object_type="alerts.alert", object_id=str(alert.pk)
    ).order_by("seq"):
        detail = json.loads(entry.detail_json or "{}")
        items.append(
            {
                "at": entry.created_at,
                "action": entry.action,
                "who": entry.actor_username,
                "note": detail.get("note", ""),
                "level": detail.get("level"),
            }
        )
    for n in alert.notifications.all():
        items.append(
            {
                "at": n.sent_at or n.created_at,
                "action": f"notify.{n.channel}",
                "who": n.target,
                "note": n.last_error if n.status == Notification.Status.FAILED else "",
                "level": n.level,
                "status": n.status,
                "event": n.event,
            }
        )
    items.sort(key=lambda i: i["at"])
    return items


def unresolved_for_cameras(cameras: Iterable[Camera]) -> QuerySet[Alert]:
    return Alert.objects.filter(camera__in=list(cameras)).exclude(state=Alert.State.RESOLVED)


# --------------------------------------------------------------------------- snapshots
SNAPSHOT_SALT = "vigil.alerts.snapshot"
SNAPSHOT_TOKEN_SECONDS = 15 * 60


def snapshot_range(alert: Alert) -> tuple[datetime, datetime]:
    """The footage the snapshots come from: the last good view (up to a minute before
    the condition started) to the picture when the alert was raised."""
    detail = json.loads(alert.detail_json or "{}")
    try:
        started = datetime.fromisoformat(detail["started_at"])
        raised = datetime.fromisoformat(detail["raised_at"])
    except (KeyError, TypeError, ValueError):
        started = raised = alert.opened_at
    return started - timedelta(seconds=60), max(raised, started) + timedelta(seconds=1)


def snapshot_tokens(actor: Actor, alert: Alert) -> dict[str, str] | None:
    """Tokens for the alert's snapshots when the person may see them (playback of the
    camera at that time, Art. 4.1, 7.1), audited once for the page, allowed or refused;
    None otherwise."""
    from django.core import signing

    from vigil.authz.services import FootageRange, authorize

    if alert.camera is None or not (alert.snapshot_before or alert.snapshot_after):
        return None
    start, end = snapshot_range(alert)
    rng = FootageRange(alert.camera, start, end)
    if not authorize(actor, Action.PLAYBACK, rng).allowed:
        return None
    assert actor.user is not None
    tokens = {}
    for kind in ("before", "after"):
        if getattr(alert, f"snapshot_{kind}"):
            tokens[kind] = signing.dumps(
                {"u": actor.user.pk, "a": alert.pk, "k": kind}, salt=SNAPSHOT_SALT
            )
    return tokens


def snapshot_for(user: User | None, token: str) -> bytes | None:
    """The JPEG behind a token issued to ``user`` on an audited page view."""
    from django.core import signing

    from vigil.authz.services import FootageRange, decide

    if user is None or not user.is_authenticated:
        return None
    try:
        data = signing.loads(token, salt=SNAPSHOT_SALT, max_age=SNAPSHOT_TOKEN_SECONDS)
    except signing.BadSignature:
        return None
    if data.get("u") != user.pk or data.get("k") not in ("before", "after"):
        return None
    alert = Alert.objects.select_related("camera", "camera__area").filter(pk=data.get("a")).first()
    if alert is None or alert.camera is None:
        return None
    start, end = snapshot_range(alert)
    if not decide(user, Action.PLAYBACK, FootageRange(alert.camera, start, end)).allowed:
        return None
    digest = getattr(alert, f"snapshot_{data['k']}")
    return snapshots.read(digest) if digest else None
