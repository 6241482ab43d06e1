"""Use cases: the wall, live and playback sessions (one audit entry each), re-checks
without audit, token refresh, snapshots, the timeline and its marks hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.models import Grant
from vigil.core.middleware import AUTH_AT_KEY
from vigil.live import marks, services, tokens
from vigil.live.tests.footage import utc
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


def session_for(user: Any) -> str:
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store[AUTH_AT_KEY] = timezone.now().timestamp()
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.create()
    assert store.session_key
    return store.session_key


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


# ------------------------------------------------------------------------------ wall
def test_wall_pages_through_every_camera_the_guard_may_watch(users: Any) -> None:
    guard = users["baove"]
    first = services.wall_page(guard, layout=25, page=1)
    assert first.total == 86 and first.pages == 4
    assert [c.code for c in first.cameras][:2] == ["CAM-001", "CAM-002"]
    seen = []
    for page in range(1, 5):
        seen += [c.code for c in services.wall_page(guard, layout=25, page=page).cameras]
    assert seen == sorted(Camera.objects.values_list("code", flat=True))
    assert len(services.wall_page(guard, layout=16, page=99).cameras) == 86 - 5 * 16  # last page
    assert services.wall_page(guard, layout=7).layout == 16  # only the grid sizes offered


def test_wall_filters_by_area_and_department(users: Any) -> None:
    guard = users["baove"]
    gate = services.wall_page(guard, area="CONG-CHINH")
    assert [c.area.code for c in gate.cameras] == ["CONG-CHINH"] * 4
    mg = services.wall_page(guard, department="MG", layout=25)
    assert mg.total == Camera.objects.filter(area__department__code="MG").count() > 0
    assert {c.area.department.code for c in mg.cameras} == {"MG"}
    assert {a.code for a in gate.areas} >= {"CONG-CHINH", "LOP-C1"}


@override_settings()
def test_teacher_sees_only_their_area_and_only_when_allowed(users: Any, settings: Any) -> None:
    teacher = users["giaovien"]  # staff of the MG department
    assert services.wall_page(teacher).total == 0  # staff live view is off by default
    settings.VIGIL = settings.VIGIL.model_copy(
        update={
            "access": settings.VIGIL.access.model_copy(update={"staff_live_view_own_area": True})
        }
    )
    page = services.wall_page(teacher, layout=25)
    assert page.total > 0
    assert {c.area.department.code for c in page.cameras} == {"MG"}
    assert services.wall_page(users["ketoan"]).total == 0  # finance: no live view


def test_status_shows_tamper_alerts_to_those_who_see_alerts(users: Any) -> None:
    from vigil.alerts.models import Alert, Severity

    cam = Camera.objects.get(code="CAM-010")
    now = timezone.now()
    Alert.objects.create(
        camera=cam, cause="tamper_covered", open_key="CAM-010::tamper_covered",
        severity=Severity.CRITICAL, title="Lens covered", opened_at=now, last_seen_at=now,
    )  # fmt: skip
    Alert.objects.create(
        camera=Camera.objects.get(code="CAM-011"), cause="tamper_moved", open_key=None,
        state=Alert.State.RESOLVED, severity=Severity.WARNING, title="Moved",
        opened_at=now, last_seen_at=now,
    )  # fmt: skip
    states = services.camera_states(users["baove"], ["CAM-010", "CAM-011", "CAM-012"])
    assert states["CAM-010"]["tamper"] is True
    assert states["CAM-011"]["tamper"] is False  # resolved
    assert states["CAM-012"]["status"] == "unknown"  # no recorder health yet, not relayed
    assert services.camera_states(users["giaovien"], ["CAM-010"]) == {}  # may not watch
    assert services.camera_states(users["ketoan"], ["CAM-010"]) == {}


def test_status_without_a_relay_is_the_recorders_while_it_runs(users: Any) -> None:
    from vigil.recording.models import CameraHealth, RecorderNode

    cam, other = Camera.objects.get(code="CAM-010"), Camera.objects.get(code="CAM-011")
    CameraHealth.objects.create(camera=cam, online=True)
    CameraHealth.objects.create(camera=other, online=False)
    codes = ["CAM-010", "CAM-011"]
    stale = {c: s["status"] for c, s in services.camera_states(users["baove"], codes).items()}
    assert stale == {"CAM-010": "unknown", "CAM-011": "unknown"}  # no recorder running
    now = timezone.now()
    RecorderNode.objects.create(
        recorder=cam.recorder, hostname="h", pid=1, started_at=now, heartbeat_at=now
    )
    states = {c: s["status"] for c, s in services.camera_states(users["baove"], codes).items()}
    assert states == {"CAM-010": "live", "CAM-011": "offline"}


# ------------------------------------------------------------------------------ live
def test_opening_a_live_session_is_one_audit_entry_per_camera(users: Any) -> None:
    guard = users["baove"]
    key = session_for(guard)
    opened = services.open_live(
        Actor(guard, "10.0.0.5"), key, ["CAM-001", "CAM-002", "NOPE"], "sub"
    )
    assert [c["allowed"] for c in opened.cameras] == [True, True, False]
    live = entries("footage.live")
    assert [(e.object_repr.split(" ")[0], e.outcome) for e in live] == [
        ("CAM-001", "success"),
        ("CAM-002", "success"),
    ]
    assert live[0].detail["start"] is not None and live[0].client_ip == "10.0.0.5"
    assert opened.token is not None
    grant = services.check_live(opened.token, guard, key)  # media request: no new entry
    assert [c.code for c in grant.channels] == ["CAM-001", "CAM-002"]
    assert grant.channels[0].target.credentials is not None  # for connecting only
    assert "vigil" not in grant.channels[0].target.url  # the URL carries no credential
    services.refresh_token(opened.token, guard, key)
    services.recheck_live(grant, key)
    assert len(entries("footage.live")) == 2


def test_a_refused_live_session_is_audited_and_gives_no_token(users: Any) -> None:
    accountant = users["ketoan"]
    opened = services.open_live(Actor(accountant), session_for(accountant), ["CAM-001"], "sub")
    assert opened.token is None and not opened.cameras[0]["allowed"]
    assert [e.outcome for e in entries("footage.live")] == ["denied"]


def test_live_token_is_bound_to_its_session_and_user(users: Any) -> None:
    guard, head = users["baove"], users["totruongbv"]
    key = session_for(guard)
    token = services.open_live(Actor(guard), key, ["CAM-001"], "sub").token
    assert token is not None
    with pytest.raises(tokens.TokenInvalid):
        services.check_live(token, guard, session_for(guard))  # another session of the same user
    with pytest.raises(tokens.TokenInvalid):
        services.check_live(token, head, key)  # another user
    with pytest.raises(tokens.TokenInvalid):
        services.check_live(token[:-2] + "xx", guard, key)  # forged
    with pytest.raises(tokens.TokenInvalid):
        tokens.read(token, session_key=key, user_id=guard.pk, max_age=-1)  # expired
    with pytest.raises(PermissionDenied):
        services.check_live(token, None, key)


def test_live_recheck_follows_permission_and_session(users: Any) -> None:
    tech = users["kythuat"]  # supplier technician: cameras under maintenance only
    cam = Camera.objects.get(code="CAM-030")
    cam.state = Camera.State.MAINTENANCE
    cam.save()
    key = session_for(tech)
    token = services.open_live(Actor(tech), key, ["CAM-030"], "main").token
    assert token is not None
    grant = services.check_live(token, tech, key)
    assert services.recheck_live(grant, key) == {cam.pk}
    cam.state = Camera.State.IN_SERVICE
    cam.save()
    assert services.recheck_live(grant, key) == set()
    with pytest.raises(PermissionDenied):
        services.check_live(token, tech, key)
    with pytest.raises(PermissionDenied):
        services.refresh_token(token, tech, key)
    # A signed-out session ends streams too.
    guard = users["baove"]
    key2 = session_for(guard)
    grant2 = services.check_live(
        services.open_live(Actor(guard), key2, ["CAM-030"], "sub").token or "", guard, key2
    )
    assert services.recheck_live(grant2, key2) == {cam.pk}
    SessionStore(key2).delete()
    assert services.recheck_live(grant2, key2) == set()


# -------------------------------------------------------------------------- playback
def test_playback_session_is_one_audit_entry_per_camera_with_the_range(users: Any) -> None:
    head = users["totruongbv"]
    key = session_for(head)
    start, end = services.day_range("")
    opened = services.open_playback(Actor(head), key, ["CAM-004", "CAM-005"], start, end)
    assert all(c["allowed"] and c["token"] for c in opened["cameras"])
    pb = entries("footage.playback")
    assert len(pb) == 2
    assert pb[0].detail["camera"] == "CAM-004"
    assert datetime.fromisoformat(pb[0].detail["start"]) == start
    assert datetime.fromisoformat(pb[0].detail["end"]) <= timezone.now()  # clipped to now
    grant = services.check_playback(opened["cameras"][0]["token"], head, key)
    assert grant.camera.code == "CAM-004" and grant.origin == start
    services.refresh_token(opened["cameras"][0]["token"], head, key)
    assert len(entries("footage.playback")) == 2


def test_guard_playback_is_limited_to_recent_footage(users: Any) -> None:
    guard = users["baove"]
    key = session_for(guard)
    now = timezone.now()
    ok = services.open_playback(
        Actor(guard), key, ["CAM-004"], now - timedelta(hours=2), now - timedelta(hours=1)
    )
    assert ok["cameras"][0]["allowed"]
    old = services.open_playback(
        Actor(guard), key, ["CAM-004"], now - timedelta(days=3), now - timedelta(days=2)
    )
    assert not old["cameras"][0]["allowed"] and "token" not in old["cameras"][0]
    assert [e.outcome for e in entries("footage.playback")] == ["success", "denied"]


def test_playback_input_is_checked(users: Any) -> None:
    head = users["totruongbv"]
    now = timezone.now()
    with pytest.raises(services.LiveError):
        services.open_playback(Actor(head), None, [], now - timedelta(hours=1), now)
    with pytest.raises(services.LiveError):
        services.open_playback(
            Actor(head), None, ["CAM-001", "CAM-002", "CAM-003", "CAM-004", "CAM-005"],
            now - timedelta(hours=1), now,
        )  # fmt: skip
    with pytest.raises(services.LiveError):
        services.open_playback(Actor(head), None, ["CAM-001"], now + timedelta(hours=1), now)
    with pytest.raises(services.LiveError):
        services.day_range("26/11/2026")


def test_revoking_a_grant_stops_playback_at_once(users: Any) -> None:
    researcher = users["nghiencuu"]
    now = timezone.now()
    start, end = now - timedelta(hours=3), now - timedelta(hours=2)
    grant = Grant.objects.create(
        grantee=researcher, actions="footage.playback", footage_start=start, footage_end=end,
        valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=1),
        source="test", created_by=users["hieutruong"],
    )  # fmt: skip
    grant.cameras.add(Camera.objects.get(code="CAM-004"))
    key = session_for(researcher)
    opened = services.open_playback(Actor(researcher), key, ["CAM-004", "CAM-005"], start, end)
    allowed = {c["code"]: c["allowed"] for c in opened["cameras"]}
    assert allowed == {"CAM-004": True, "CAM-005": False}
    token = opened["cameras"][0]["token"]
    assert services.check_playback(token, researcher, key).camera.code == "CAM-004"
    grant.revoked_at = timezone.now()
    grant.save()
    with pytest.raises(PermissionDenied):
        services.check_playback(token, researcher, key)
    with pytest.raises(PermissionDenied):
        services.refresh_token(token, researcher, key)


def test_snapshots_are_audited_within_the_session(users: Any) -> None:
    head = users["totruongbv"]
    key = session_for(head)
    start, end = services.day_range("")
    token = services.open_playback(Actor(head), key, ["CAM-004"], start, end)["cameras"][0]["token"]
    at = start + timedelta(minutes=5)
    entry = services.record_snapshot(Actor(head), key, token, at)
    assert entry.action == "footage.snapshot"
    assert entry.detail["kind"] == "playback" and entry.detail["at"] == at.isoformat()
    assert entry.detail["session"] == entries("footage.playback")[0].seq
    with pytest.raises(services.LiveError):
        services.record_snapshot(Actor(head), key, token, end + timedelta(days=2))
    live = services.open_live(Actor(head), key, ["CAM-004"], "main").token or ""
    assert services.record_snapshot(Actor(head), key, live, None).detail["kind"] == "live"
    with pytest.raises(tokens.TokenInvalid):
        services.record_snapshot(Actor(head), session_for(head), token, at)


def test_refused_snapshots_are_audited(users: Any) -> None:
    tech = users["kythuat"]  # supplier technician: cameras under maintenance only
    cam = Camera.objects.get(code="CAM-030")
    cam.state = Camera.State.MAINTENANCE
    cam.save()
    key = session_for(tech)
    live = services.open_live(Actor(tech), key, ["CAM-030"], "main").token or ""
    allowed = services.record_snapshot(Actor(tech), key, live, None)
    assert (allowed.action, allowed.outcome) == ("footage.snapshot", "success")
    assert allowed.detail["camera"] == "CAM-030" and allowed.detail["kind"] == "live"
    cam.state = Camera.State.IN_SERVICE
    cam.save()
    with pytest.raises(PermissionDenied):
        services.record_snapshot(Actor(tech), key, live, None)
    refused = entries("footage.snapshot")[-1]
    assert refused.seq > allowed.seq and refused.outcome == "denied"
    assert refused.actor_username == "kythuat" and refused.detail["camera"] == "CAM-030"
    assert (
        refused.detail["kind"] == "live" and refused.detail["session"] == allowed.detail["session"]
    )
    # A playback whose grant was revoked: the refused snapshot is audited too.
    researcher = users["nghiencuu"]
    now = timezone.now()
    start, end = now - timedelta(hours=2), now - timedelta(hours=1)
    grant = Grant.objects.create(
        grantee=researcher, actions="footage.playback",
        footage_start=start, footage_end=end,
        valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=1),
        source="test", created_by=users["hieutruong"],
    )  # fmt: skip
    grant.cameras.add(Camera.objects.get(code="CAM-004"))
    key = session_for(researcher)
    opened = services.open_playback(Actor(researcher), key, ["CAM-004"], start, end)
    token = opened["cameras"][0]["token"]
    at = start + timedelta(minutes=5)
    assert services.record_snapshot(Actor(researcher), key, token, at).detail["grant"] == grant.pk
    grant.revoked_at = timezone.now()
    grant.save()
    with pytest.raises(PermissionDenied):
        services.record_snapshot(Actor(researcher), key, token, at)
    refused = entries("footage.snapshot")[-1]
    assert refused.outcome == "denied" and refused.actor_username == "nghiencuu"
    assert refused.detail["kind"] == "playback" and refused.detail["at"] == at.isoformat()


def test_playback_reads_only_segments_of_its_camera_and_range(recorded: dict[str, Any]) -> None:
    from vigil.recording.models import Segment

    base = recorded["base"]
    cam = Camera.objects.get(code="CAM-004")
    first = Segment.objects.filter(camera=cam).order_by("start").first()
    last = Segment.objects.filter(camera=cam).order_by("-start").first()
    other = Segment.objects.filter(camera__code="CAM-001").first()
    assert first is not None and last is not None and other is not None
    start, end = utc(base), utc(base + 20)
    grant = services.PlaybackGrant(cam, start, end, start, 0)
    found = services.playback_segment(grant, first.pk)
    assert found == first and found.volume is not None
    assert services.playback_segment(grant, last.pk) is None  # outside the time range
    assert services.playback_segment(grant, other.pk) is None  # another camera
    assert services.playback_segment(grant, 10**9) is None


# -------------------------------------------------------------------------- timeline
def test_timeline_has_spans_gaps_and_marks_from_the_hook(
    users: Any, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigil.alerts.models import Alert, Severity

    base = recorded["base"]
    cam = Camera.objects.get(code="CAM-004")
    Alert.objects.create(
        camera=cam, cause="tamper_covered", open_key=None, state=Alert.State.RESOLVED,
        severity=Severity.CRITICAL, title="Lens covered", opened_at=utc(base + 50),
        last_seen_at=utc(base + 55), resolved_at=utc(base + 55),
    )  # fmt: skip

    def motion(camera: Camera, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [{"start": utc(base + 5), "end": utc(base + 8), "kind": "motion", "label": "M"}]

    def broken(camera: Camera, start: datetime, end: datetime) -> list[dict[str, Any]]:
        raise RuntimeError("a broken contributor must not break playback")

    real = marks.contributors()
    assert "live" in [label for label, _fn in real]  # the live app's own alert marks
    monkeypatch.setattr(marks, "contributors", lambda: (*real, ("x", motion), ("y", broken)))
    start = utc(base - 60)
    out = services.timeline(users["totruongbv"], cam, start, utc(base + 120))
    assert out["spans"][0][0] == 60.0 and out["spans"][0][1] == pytest.approx(90, abs=0.2)
    assert out["spans"][1][0] == pytest.approx(105, abs=0.2)
    gap = out["gaps"][0]
    assert gap["cause"] == "camera_unreachable" and gap["label"]
    assert gap["start"] == pytest.approx(90, abs=0.2) and gap["end"] == pytest.approx(105, abs=0.2)
    kinds = [(m["kind"], m["source"], m["start"]) for m in out["marks"]]
    assert ("motion", "x", 65.0) in kinds
    assert ("tamper", "live", 110.0) in kinds
    with pytest.raises(PermissionDenied):
        services.timeline(users["ketoan"], cam, start, utc(base + 120))


def test_day_range_is_the_local_day_in_utc() -> None:
    start, end = services.day_range("2026-03-02")
    assert start == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # Asia/Ho_Chi_Minh is UTC+7
    assert end - start == timedelta(days=1)
