"""Delivering alert events: e-mail over SMTP and signed webhooks, with retries.

Events are queued as :class:`~vigil.alerts.models.Notification` rows by
:mod:`vigil.alerts.services`; :func:`deliver_due` sends what is due and reschedules
failures with a growing delay (5 s, 15 s, 1 min, 5 min, 15 min, ...) until
``[alerts] delivery_attempts``. :func:`dispatch` is one round of the
``vigil alerts dispatch`` loop: escalation, then delivery.

Webhook requests are ``POST`` with a JSON body and these headers::

    X-Vigil-Event: alert.raised | alert.escalated | alert.acknowledged | alert.resolved
    X-Vigil-Delivery: <notification id>       (the same on every retry: de-duplicate on it)
    X-Vigil-Timestamp: <unix seconds>
    X-Vigil-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

The receiver recomputes the signature with the shared secret (``[alerts]
webhook_secret``, or the generated ``keys/alerts-webhook.key``) and rejects requests
whose timestamp is more than a few minutes old. E-mails and webhooks carry no pictures:
snapshots are footage of children and are shown only in Vigil, to people allowed to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from vigil.alerts.models import Alert, Notification
from vigil.conf import read_or_create_secret

if TYPE_CHECKING:
    from vigil.accounts.models import User

log = logging.getLogger("vigil.alerts")

RETRY_DELAYS = (5, 15, 60, 300, 900, 3600)
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def webhook_secret() -> str:
    cfg = settings.VIGIL.alerts
    return cfg.webhook_secret or read_or_create_secret(settings.PATHS.keys / "alerts-webhook.key")


def sign(body: bytes, timestamp: str, secret: str | None = None) -> str:
    key = (secret or webhook_secret()).encode()
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(body: bytes, timestamp: str, signature: str, secret: str) -> bool:
    """What a receiver does (used by the tests and documented for integrators)."""
    return hmac.compare_digest(sign(body, timestamp, secret), signature)


# --------------------------------------------------------------------------- e-mail text
def _local(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S")


def render_email(alert: Alert, event: str, level: int, user: User) -> tuple[str, str]:
    """Subject and plain-text body, in the site's language."""
    from vigil.alerts.services import alert_url

    with translation.override(settings.LANGUAGE_CODE):
        severity = str(alert.get_severity_display())
        if event == "escalated":
            lead = _(
                "This alert has not been acknowledged in time and is escalated to you "
                "(level %(level)d)."
            ) % {"level": level}
            prefix = _("ESCALATED")
        else:
            lead = _("A new alert needs the security desk's attention.")
            prefix = severity.upper()
        subject = f"[Vigil] {prefix}: {alert.title}"
        lines = [
            _("Hello %(name)s,") % {"name": user.display_name},
            "",
            lead,
            "",
            f"{_('Alert')}: {alert.title}",
            f"{_('Severity')}: {severity}",
            f"{_('Cause')}: {alert.cause}",
        ]
        if alert.camera is not None:
            lines += [
                f"{_('Camera')}: {alert.camera.code} — {alert.camera.name}",
                f"{_('Area')}: {alert.camera.area.name}",
            ]
        if alert.department is not None:
            lines.append(f"{_('Responsible department')}: {alert.department.name}")
        lines += [
            f"{_('Opened')}: {_local(alert.opened_at)} ({settings.TIME_ZONE})",
        ]
        if alert.message:
            lines += ["", alert.message]
        lines += [
            "",
            _("Acknowledge and handle it in Vigil:"),
            alert_url(alert),
            "",
            _("Pictures are not sent by e-mail; they are shown in Vigil to those allowed."),
        ]
    return subject[:250], "\n".join(lines)


# --------------------------------------------------------------------------- sending
@dataclass
class DeliveryResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _send_email(n: Notification) -> None:
    cfg = settings.VIGIL.email
    data = json.loads(n.payload_json)
    connection = get_connection(
        SMTP_BACKEND,
        host=cfg.host,
        port=cfg.port,
        username=cfg.username or None,
        password=cfg.password or None,
        use_tls=cfg.security == "starttls",
        use_ssl=cfg.security == "tls",
        timeout=cfg.timeout_seconds,
        fail_silently=False,
    )
    msg = EmailMessage(
        subject=data["subject"],
        body=data["body"],
        from_email=cfg.from_address,
        to=[n.target],
        connection=connection,
        headers={"X-Vigil-Alert": str(n.alert_id), "X-Vigil-Event": f"alert.{n.event}"},
    )
    msg.send()


def _send_webhook(n: Notification) -> None:
    body = n.payload_json.encode("utf-8")
    ts = str(int(time.time()))
    req = urllib.request.Request(  # noqa: S310 - http(s) only, validated in vigil.conf
        n.target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Vigil-Alerts/1",
            "X-Vigil-Event": f"alert.{n.event}",
            "X-Vigil-Delivery": str(n.pk),
            "X-Vigil-Timestamp": ts,
            "X-Vigil-Signature": sign(body, ts),
        },
    )
    timeout = settings.VIGIL.alerts.webhook_timeout_seconds
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        if not 200 <= resp.status < 300:  # pragma: no cover - urlopen raises for >= 400
            raise OSError(f"HTTP {resp.status}")


def _deliver(n: Notification) -> None:
    if n.channel == Notification.Channel.EMAIL:
        _send_email(n)
    else:
        _send_webhook(n)


def deliver_due(now: datetime | None = None, limit: int = 200) -> DeliveryResult:
    """Send every pending notification whose time has come."""
    now = now or timezone.now()
    result = DeliveryResult()
    attempts_max = settings.VIGIL.alerts.delivery_attempts
    due = list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, next_attempt_at__lte=now
        ).order_by("next_attempt_at", "id")[:limit]
    )
    for n in due:
        error = ""
        try:
            _deliver(n)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} {exc.reason}"
        except (OSError, ValueError) as exc:  # SMTP and socket errors are OSErrors
            error = f"{type(exc).__name__}: {exc}"
        n.attempts += 1
        if not error:
            n.status = Notification.Status.SENT
            n.sent_at = timezone.now()
            n.last_error = ""
            result.sent += 1
        elif n.attempts >= attempts_max:
            n.status = Notification.Status.FAILED
            n.last_error = error[:500]
            result.failed += 1
            log.error(
                "alert %s: %s to %s failed for good: %s", n.alert_id, n.channel, n.target, error
            )
        else:
            delay = RETRY_DELAYS[min(n.attempts - 1, len(RETRY_DELAYS) - 1)]
            n.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            n.last_error = error[:500]
            result.retried += 1
            log.warning(
                "alert %s: %s to %s failed (attempt %d), retrying in %d s: %s",
                n.alert_id,
                n.channel,
                n.target,
                n.attempts,
                delay,
                error,
            )
        with transaction.atomic():
            n.save(update_fields=["status", "attempts", "sent_at", "next_attempt_at", "last_error"])
    return result


def dispatch(now: datetime | None = None) -> tuple[int, DeliveryResult]:
    """One round: escalate what is overdue, then deliver what is due."""
    from vigil.alerts.services import escalate_due

    escalated = escalate_due(now)
    return len(escalated), deliver_due()
