"""Acknowledging, resolving, escalating and seeing alerts (Art. 6, 7.1)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.alerts import services
from vigil.alerts.models import Alert
from vigil.audit.models import AuditEntry
from vigil.authz.services import AccessDenied
from vigil.school.models import Camera, Recorder

pytestmark = pytest.mark.django_db

JPEG_BEFORE = b"\xff\xd8\xff\xe0before-picture\xff\xd9"
JPEG_AFTER = b"\xff\xd8\xff\xe0after-picture\xff\xd9"


def _mg_camera() -> Camera:
    return Camera.objects.filter(area__department__code="MG").order_by("code").first()  # type: ignore[return-value]


def _tamper(camera: Camera, cause: str = "tamper_covered", **kw):  # type: ignore[no-untyped-def]
    now = timezone.now()
    alert, _new = services.raise_alert(
        cause=cause,
        severity=kw.pop("severity", "critical"),
        title=f"{camera.code}: covered",
        camera=camera,
        audience=("security_guard", "department_head"),
        detail={
            "started_at": (now - timedelta(seconds=4)).isoformat(),
            "raised_at": now.isoformat(),
        },
        snapshot_before=JPEG_BEFORE,
        snapshot_after=JPEG_AFTER,
        **kw,
    )
    return alert


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def test_acknowledge_then_resolve_with_note_is_audited(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    guard = Actor(users["baove"], ip="10.0.0.5")
    services.acknowledge(guard, alert, "going to look")
    alert.refresh_from_db()
    assert alert.state == Alert.State.ACKNOWLEDGED
    assert alert.acknowledged_by == users["baove"] and alert.acknowledged_at is not None
    with pytest.raises(services.AlertStateError):
        services.acknowledge(guard, alert)
    with pytest.raises(services.AlertStateError):
        services.resolve(guard, alert, "   ")
    services.resolve(guard, alert, "a jacket was hung over the camera; removed it")
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED and alert.open_key is None
    assert alert.resolution_note.startswith("a jacket")
    ack, res = _entries("alert.acknowledge"), _entries("alert.resolve")
    assert len(ack) == 1 and len(res) == 1
    assert ack[0].actor_username == "baove" and ack[0].client_ip == "10.0.0.5"
    assert json.loads(ack[0].detail_json)["note"] == "going to look"
    assert json.loads(res[0].detail_json)["note"].startswith("a jacket")
    # resolved: a new occurrence opens a new alert
    again = _tamper(alert.camera)
    assert again.pk != alert.pk


def test_department_head_handles_only_own_department(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    own = _tamper(_mg_camera())
    other_cam = Camera.objects.exclude(area__department__code="MG").order_by("code").first()
    other = _tamper(other_cam)
    head = Actor(users["totruongmg"])
    visible = set(services.visible_alerts(users["totruongmg"]).values_list("pk", flat=True))
    assert own.pk in visible and other.pk not in visible
    with pytest.raises(AccessDenied):
        services.acknowledge(head, other)
    denied = AuditEntry.objects.filter(action="alert.handle", outcome="denied")
    assert denied.count() == 1
    services.acknowledge(head, own)
    # recorder and storage alerts are the desk's, not a department head's
    rec, _ = services.raise_alert(
        cause="storage_floor_at_risk",
        severity="critical",
        title="floor",
        recorder=Recorder.objects.first(),
    )
    assert rec.pk not in set(
        services.visible_alerts(users["totruongmg"]).values_list("pk", flat=True)
    )
    with pytest.raises(AccessDenied):
        services.resolve(head, rec, "not mine")
    services.resolve(Actor(users["baove"]), rec, "disk added")


def test_roles_without_alert_rights_are_refused(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    with pytest.raises(AccessDenied):
        services.acknowledge(Actor(users["giaovien"]), alert)
    assert not services.visible_alerts(users["ketoan"]).exists()


def test_escalation_to_security_head_then_board(demo_site, users, settings) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    quiet = _tamper(Camera.objects.get(code="CAM-002"), severity="critical")
    services.acknowledge(Actor(users["baove"]), quiet)
    info = _tamper(Camera.objects.get(code="CAM-003"), severity="info")
    cfg = settings.VIGIL.alerts
    t0 = alert.opened_at
    assert services.escalate_due(t0 + timedelta(minutes=cfg.security_head_after_minutes - 1)) == []
    done = services.escalate_due(t0 + timedelta(minutes=cfg.security_head_after_minutes, seconds=1))
    assert [(a.pk, lvl) for a, lvl in done] == [(alert.pk, 1)]
    alert.refresh_from_db()
    assert alert.escalation_level == 1
    assert [u.username for u in services.recipients(alert, 1)] == ["totruongbv"]
    # nothing more until the board's deadline; then the board (principal and members)
    assert services.escalate_due(t0 + timedelta(minutes=cfg.security_head_after_minutes + 2)) == []
    done = services.escalate_due(t0 + timedelta(minutes=cfg.board_after_minutes, seconds=1))
    assert [(a.pk, lvl) for a, lvl in done] == [(alert.pk, 2)]
    assert {u.username for u in services.recipients(alert, 2)} == {"hieutruong", "phohieutruong"}
    entries = _entries("alert.escalate")
    assert [json.loads(e.detail_json)["level"] for e in entries] == [1, 2]
    assert all(e.actor_username == "system:alerts" for e in entries)
    quiet.refresh_from_db()
    info.refresh_from_db()
    assert quiet.escalation_level == 0 and info.escalation_level == 0


def test_escalation_catches_up_both_levels(demo_site, settings) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    done = services.escalate_due(alert.opened_at + timedelta(hours=5))
    assert [lvl for _a, lvl in done] == [1, 2]


def test_level_zero_goes_to_the_desk_and_the_department(demo_site) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    names = {u.username for u in services.recipients(alert, 0)}
    assert names == {"baove", "totruongmg"}
    other = _tamper(Camera.objects.exclude(area__department__code="MG").order_by("code").first())
    assert {u.username for u in services.recipients(other, 0)} == {"baove"}


def test_list_page_badge_and_live_partial(demo_site, login, client) -> None:  # type: ignore[no-untyped-def]
    _tamper(_mg_camera())
    login("baove")
    page = client.get(reverse("alerts:list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'hx-trigger="every 5s"' in html and "data-alert=" in html
    partial = client.get(reverse("alerts:list"), HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"data-alert=" in partial.content
    badge = client.get(reverse("alerts:badge"))
    assert b">1<" in badge.content
    home = client.get("/").content.decode()
    assert reverse("alerts:badge") in home  # the header badge


def test_detail_shows_snapshots_to_the_desk_with_one_audit_entry(demo_site, login, client) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    login("baove")
    before = AuditEntry.objects.filter(action="footage.playback").count()
    page = client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    assert 'data-testid="snapshot-before"' in page and 'data-testid="snapshot-after"' in page
    entries = AuditEntry.objects.filter(action="footage.playback")
    assert entries.count() == before + 1
    detail = json.loads(entries.order_by("-seq").first().detail_json)
    assert detail["camera"] == alert.camera.code
    start = page.index("/alerts/snapshot/")
    url = page[start : page.index('"', start)]
    img = client.get(url)
    assert img.status_code == 200 and img.content in (JPEG_BEFORE, JPEG_AFTER)
    assert entries.count() == before + 1  # the pictures themselves add no entry


def test_department_head_sees_alert_but_not_pictures(demo_site, login, client) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    guard_client = client
    login("baove", guard_client)
    page = guard_client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    start = page.index("/alerts/snapshot/")
    url = page[start : page.index('"', start)]
    from django.test import Client

    head = login("totruongmg", Client())
    before_success = AuditEntry.objects.filter(action="footage.playback", outcome="success").count()
    before_seq = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    body = head.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    assert 'data-testid="pictures-hidden"' in body and "snapshot-before" not in body
    refused = AuditEntry.objects.filter(action="footage.playback", seq__gt=before_seq)
    assert [e.outcome for e in refused] == ["denied"]  # the refusal is audited
    assert refused[0].actor_username == "totruongmg"
    assert refused[0].detail["camera"] == alert.camera.code
    assert (
        AuditEntry.objects.filter(action="footage.playback", outcome="success").count()
        == before_success
    )
    assert head.get(url).status_code == 404  # a token issued to someone else


def test_acknowledge_and_resolve_through_the_pages_and_api(demo_site, login, client) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    login("baove")
    r = client.post(reverse("alerts:acknowledge", args=[alert.pk]), {"next": "list"})
    assert r.status_code == 302 and r.url == reverse("alerts:list")
    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    r = client.post(
        f"/api/alerts/{alert.pk}/resolve", {"note": ""}, content_type="application/json"
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/alerts/{alert.pk}/resolve", {"note": "lens cleaned"}, content_type="application/json"
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert r.json()["resolved_by"] == "baove"
    listed = client.get("/api/alerts/?state=resolved").json()
    assert [a["id"] for a in listed] == [alert.pk]


def test_end_condition_keeps_the_alert_open(demo_site) -> None:  # type: ignore[no-untyped-def]
    alert = _tamper(_mg_camera())
    assert services.end_condition(cause="tamper_covered", camera=alert.camera) == 1
    alert.refresh_from_db()
    assert alert.state == "open" and alert.condition_ended_at is not None
    again = _tamper(alert.camera)
    assert again.pk == alert.pk
    again.refresh_from_db()
    assert again.condition_ended_at is None and again.occurrences == 2


def test_polls_after_the_session_ended_redirect_the_page(demo_site, client) -> None:  # type: ignore[no-untyped-def]
    badge = client.get(reverse("alerts:badge"), HTTP_HX_REQUEST="true")
    assert badge.status_code == 200 and badge.content == b""
    assert badge["HX-Redirect"] == reverse("accounts:login")
    table = client.get(reverse("alerts:list"), HTTP_HX_REQUEST="true")
    assert table["HX-Redirect"] == reverse("accounts:login")
    assert client.get(reverse("alerts:list")).status_code == 302  # a plain visit: sign in
