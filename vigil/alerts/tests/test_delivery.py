"""Alert e-mail over a real SMTP server and signed webhooks to a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from conftest import free_port
from vigil.accounts.actor import Actor
from vigil.alerts import notify, services
from vigil.alerts.models import Notification
from vigil.conf import AlertsConfig, ConfigError, EmailConfig, load_config
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class _Receiver(BaseHTTPRequestHandler):
    calls: list[dict[str, Any]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append({"headers": dict(self.headers), "body": body})
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[type[_Receiver], str]]:
    handler = type("Receiver", (_Receiver,), {"calls": [], "fail_first": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/vigil-hook"
    server.shutdown()
    server.server_close()


def _configure(settings: Any, **sections: Any) -> None:
    settings.VIGIL = settings.VIGIL.model_copy(update=sections)


def _raise(camera: Camera):  # type: ignore[no-untyped-def]
    alert, _ = services.raise_alert(
        cause="tamper_covered",
        severity="critical",
        title=f"{camera.code} {camera.name}: camera covered",
        camera=camera,
        audience=("security_guard", "department_head"),
        snapshot_after=b"\xff\xd8picture\xff\xd9",
    )
    return alert


def _mg_camera() -> Camera:
    return Camera.objects.filter(area__department__code="MG").order_by("code").first()  # type: ignore[return-value]


def test_new_alert_is_emailed_to_desk_and_department(demo_site, users, settings, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    _configure(
        settings,
        email=EmailConfig(host="127.0.0.1", port=port, from_address="vigil@school.example"),
    )
    alert = _raise(_mg_camera())
    queued = list(Notification.objects.filter(alert=alert, channel="email"))
    assert {n.target for n in queued} == {users["baove"].email, users["totruongmg"].email}
    result = notify.deliver_due()
    assert result.sent == 2 and result.failed == 0
    assert sorted(rcpt for _f, rcpts, _c in inbox.messages for rcpt in rcpts) == sorted(
        n.target for n in queued
    )
    msg = message_from_bytes(inbox.messages[0][2])
    subject = str(make_header(decode_header(msg["Subject"])))
    assert alert.camera.code in subject and msg["From"] == "vigil@school.example"
    body = msg.get_payload(decode=True).decode("utf-8")
    assert f"/alerts/{alert.pk}/" in body
    assert msg.get_content_maintype() == "text"  # no attachment: pictures stay in Vigil
    assert all(n.status == "sent" for n in Notification.objects.filter(alert=alert))


def test_escalation_emails_the_security_head(demo_site, users, settings, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    _configure(settings, email=EmailConfig(host="127.0.0.1", port=port))
    alert = _raise(_mg_camera())
    notify.deliver_due()
    inbox.messages.clear()
    later = alert.opened_at + timedelta(
        minutes=settings.VIGIL.alerts.security_head_after_minutes + 1
    )
    escalated, result = notify.dispatch(later)
    assert escalated == 1 and result.sent == 1
    assert inbox.messages[0][1] == [users["totruongbv"].email]


def test_mail_server_down_is_retried_then_failed(demo_site, settings) -> None:  # type: ignore[no-untyped-def]
    _configure(
        settings,
        email=EmailConfig(host="127.0.0.1", port=free_port(), timeout_seconds=2),
        alerts=AlertsConfig(delivery_attempts=2),
    )
    alert = _raise(_mg_camera())
    first = notify.deliver_due()
    assert first.retried == 2 and first.sent == 0
    n = Notification.objects.filter(alert=alert).first()
    assert n.status == "pending" and n.attempts == 1 and "Connection" in n.last_error
    assert n.next_attempt_at > timezone.now()
    second = notify.deliver_due(timezone.now() + timedelta(seconds=10))
    assert second.failed == 2
    assert set(Notification.objects.filter(alert=alert).values_list("status", flat=True)) == {
        "failed"
    }


def test_webhook_is_signed_and_retried(demo_site, users, settings, webhook) -> None:  # type: ignore[no-untyped-def]
    receiver, url = webhook
    receiver.fail_first = 1
    _configure(settings, alerts=AlertsConfig(webhook_urls=[url], webhook_secret="s3cret-for-tests"))
    alert = _raise(_mg_camera())
    r1 = notify.deliver_due()
    assert r1.retried == 1
    r2 = notify.deliver_due(timezone.now() + timedelta(seconds=6))
    assert r2.sent == 1
    assert len(receiver.calls) == 2
    call = receiver.calls[-1]
    h = {k.lower(): v for k, v in call["headers"].items()}
    assert h["x-vigil-event"] == "alert.raised"
    assert h["x-vigil-delivery"] == receiver.calls[0]["headers"]["X-Vigil-Delivery"]
    assert notify.verify_signature(
        call["body"], h["x-vigil-timestamp"], h["x-vigil-signature"], "s3cret-for-tests"
    )
    assert not notify.verify_signature(
        call["body"], h["x-vigil-timestamp"], h["x-vigil-signature"], "wrong"
    )
    data = json.loads(call["body"])
    assert data["alert"]["id"] == alert.pk and data["alert"]["cause"] == "tamper_covered"
    assert data["alert"]["department"]["code"] == "MG"
    assert "picture" not in call["body"].decode()  # no snapshot in the payload
    # acknowledging and resolving are events for integrations too
    services.acknowledge(Actor(users["baove"]), alert)
    services.resolve(Actor(users["baove"]), alert, "checked")
    notify.deliver_due()
    events = [json.loads(c["body"])["event"] for c in receiver.calls[2:]]
    assert events == ["alert.acknowledged", "alert.resolved"]


def test_alert_settings_are_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "vigil.toml"
    path.write_text("[alerts]\nsecurity_head_after_minutes = 30\nboard_after_minutes = 10\n")
    with pytest.raises(ConfigError, match="board_after_minutes"):
        load_config(path)
    path.write_text('[alerts]\nwebhook_urls = ["ftp://x"]\n')
    with pytest.raises(ConfigError, match="webhook"):
        load_config(path)
    path.write_text('[email]\nsecurity = "ssl3"\n')
    with pytest.raises(ConfigError, match="security"):
        load_config(path)
    path.write_text('[email]\nhost = "mail.school.example"\nport = 587\nsecurity = "starttls"\n')
    assert load_config(path).email.port == 587
