"""Role x permission matrix, written out independently of vigil/authz/rules.py."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.rules import Action
from vigil.authz.services import FootageRange, authorize, cameras_for, can, decide
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db

PROBES = [
    "site.view",
    "site.manage",
    "camera.service@bv",
    "camera.service@maint",
    "health.view@mg",
    "health.view@bv",
    "footage.live@bv",
    "footage.live@mg",
    "footage.live@maint",
    "footage.playback@recent",
    "footage.playback@old",
    "footage.export@recent",
    "footage.download@recent",
    "request.file",
    "request.view_all",
    "request.decide",
    "request.delegate",
    "grant.revoke",
    "hold.place",
    "hold.release",
    "alert.view@bv",
    "alert.handle@mg",
    "alert.handle@bv",
    "storage.view",
    "retention.report",
    "budget.view",
    "audit.view",
    "user.manage",
    "settings.manage",
]

BOARD = {
    "site.view",
    "health.view@mg",
    "health.view@bv",
    "footage.live@bv",
    "footage.live@mg",
    "footage.live@maint",
    "footage.playback@recent",
    "footage.playback@old",
    "footage.download@recent",
    "request.file",
    "request.view_all",
    "request.decide",
    "grant.revoke",
    "hold.place",
    "hold.release",
    "alert.view@bv",
    "alert.handle@mg",
    "alert.handle@bv",
    "storage.view",
    "retention.report",
    "budget.view",
    "audit.view",
}
EXPECTED = {
    "hieutruong": BOARD | {"request.delegate", "user.manage", "settings.manage"},
    "phohieutruong": BOARD,
    "totruongbv": {
        "site.view",
        "camera.service@bv",
        "camera.service@maint",
        "health.view@mg",
        "health.view@bv",
        "footage.live@bv",
        "footage.live@mg",
        "footage.live@maint",
        "footage.playback@recent",
        "footage.playback@old",
        "request.file",
        "hold.place",
        "alert.view@bv",
        "alert.handle@mg",
        "alert.handle@bv",
        "storage.view",
        "retention.report",
    },
    "baove": {
        "site.view",
        "health.view@mg",
        "health.view@bv",
        "footage.live@bv",
        "footage.live@mg",
        "footage.live@maint",
        "footage.playback@recent",
        "request.file",
        "alert.view@bv",
        "alert.handle@mg",
        "alert.handle@bv",
    },
    "admin": {
        "site.view",
        "site.manage",
        "camera.service@bv",
        "camera.service@maint",
        "health.view@mg",
        "health.view@bv",
        "footage.live@bv",
        "footage.live@mg",
        "footage.live@maint",
        "request.file",
        "request.view_all",
        "alert.view@bv",
        "alert.handle@mg",
        "alert.handle@bv",
        "storage.view",
        "retention.report",
        "user.manage",
        "settings.manage",
    },
    "ketoan": {"site.view", "request.file", "storage.view", "retention.report", "budget.view"},
    "totruongmg": {
        "site.view",
        "health.view@mg",
        "footage.live@mg",
        "request.file",
        "alert.handle@mg",
    },
    "giaovien": {"request.file"},
    "kythuat": {
        "site.view",
        "health.view@mg",
        "health.view@bv",
        "camera.service@maint",
        "footage.live@maint",
    },
    "nghiencuu": {"request.file"},
    "phuhuynh": {"request.file"},
}


@pytest.fixture
def resources(demo_site):  # type: ignore[no-untyped-def]
    now = timezone.now()
    bv = Camera.objects.get(code="CAM-001")  # main gate: security office (Art. 6)
    mg = Camera.objects.filter(area__department__code="MG").order_by("code").first()
    maint = Camera.objects.get(code="CAM-010")
    maint.state = Camera.State.MAINTENANCE
    maint.save()
    return {
        None: None,
        "bv": bv,
        "mg": mg,
        "maint": maint,
        "recent": FootageRange(bv, now - timedelta(hours=2), now - timedelta(hours=1)),
        "old": FootageRange(
            bv, now - timedelta(days=3), now - timedelta(days=3) + timedelta(minutes=5)
        ),
    }


def _probe(user, probe, resources):  # type: ignore[no-untyped-def]
    action, _, key = probe.partition("@")
    return decide(user, Action(action), resources[key or None]).allowed


@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_role_matrix(username, users, resources) -> None:  # type: ignore[no-untyped-def]
    user = users[username]
    allowed = {p for p in PROBES if _probe(user, p, resources)}
    assert allowed == EXPECTED[username], (
        f"{username}: unexpected {sorted(allowed - EXPECTED[username])}, "
        f"missing {sorted(EXPECTED[username] - allowed)}"
    )


def test_every_role_is_covered(users) -> None:  # type: ignore[no-untyped-def]
    assert {u.role for u in users.values() if u.username in EXPECTED} == {
        u.role for u in users.values()
    }


def test_site_options_open_live_view_for_staff(users, resources) -> None:  # type: ignore[no-untyped-def]
    staff, head = users["giaovien"], users["totruongmg"]
    assert not decide(staff, Action.LIVE_VIEW, resources["mg"]).allowed
    access = settings.VIGIL.access.model_copy(
        update={"staff_live_view_own_area": True, "department_head_live_view": False}
    )
    with override_settings(VIGIL=settings.VIGIL.model_copy(update={"access": access})):
        assert decide(staff, Action.LIVE_VIEW, resources["mg"]).allowed
        assert not decide(staff, Action.LIVE_VIEW, resources["bv"]).allowed
        assert not decide(head, Action.LIVE_VIEW, resources["mg"]).allowed
        assert set(
            cameras_for(staff, Action.LIVE_VIEW).values_list("area__department__code", flat=True)
        ) == {"MG"}


def test_guard_playback_window_follows_the_setting(users, resources) -> None:  # type: ignore[no-untyped-def]
    guard = users["baove"]
    access = settings.VIGIL.access.model_copy(update={"guard_playback_hours": 96})
    with override_settings(VIGIL=settings.VIGIL.model_copy(update={"access": access})):
        assert decide(guard, Action.PLAYBACK, resources["old"]).allowed


def test_decommissioned_camera_has_no_live_view(users, resources) -> None:  # type: ignore[no-untyped-def]
    cam = resources["bv"]
    cam.state = Camera.State.DECOMMISSIONED
    cam.save()
    assert not decide(users["hieutruong"], Action.LIVE_VIEW, cam).allowed
    assert not cameras_for(users["baove"], Action.LIVE_VIEW).filter(pk=cam.pk).exists()


def test_inactive_or_anonymous_users_get_nothing(users, resources) -> None:  # type: ignore[no-untyped-def]
    principal = users["hieutruong"]
    principal.is_active = False
    principal.save()
    assert not decide(principal, Action.SITE_VIEW).allowed
    assert not decide(None, Action.SITE_VIEW).allowed


def test_footage_access_is_always_audited_and_other_refusals_too(users, resources) -> None:  # type: ignore[no-untyped-def]
    guard = Actor(user=users["baove"], ip="10.0.0.7")
    before = AuditEntry.objects.count()
    assert authorize(guard, Action.PLAYBACK, resources["recent"]).allowed
    assert not authorize(guard, Action.PLAYBACK, resources["old"]).allowed
    assert authorize(guard, Action.SITE_VIEW).allowed  # allowed non-footage: not audited here
    assert not authorize(guard, Action.SITE_MANAGE).allowed
    entries = list(AuditEntry.objects.filter(seq__gt=before).order_by("seq"))
    assert [(e.action, e.outcome) for e in entries] == [
        ("footage.playback", "success"),
        ("footage.playback", "denied"),
        ("site.manage", "denied"),
    ]
    assert entries[0].detail["camera"] == "CAM-001"
    assert entries[0].client_ip == "10.0.0.7"
    assert can(users["baove"], Action.SITE_VIEW)
    assert AuditEntry.objects.count() == before + 3


def test_local_operator_may_manage_but_never_see_footage(resources) -> None:  # type: ignore[no-untyped-def]
    op = Actor.cli()
    assert authorize(op, Action.SITE_MANAGE).allowed
    assert not authorize(op, Action.PLAYBACK, resources["recent"]).allowed
    assert not authorize(Actor.system("x"), Action.SITE_MANAGE).allowed


def test_authorize_names_the_audit_entry_it_wrote(users, resources) -> None:  # type: ignore[no-untyped-def]
    guard = Actor(user=users["baove"])
    allowed = authorize(guard, Action.PLAYBACK, resources["recent"])
    refused = authorize(guard, Action.PLAYBACK, resources["old"])
    assert AuditEntry.objects.get(seq=allowed.audit_seq).outcome == "success"
    assert AuditEntry.objects.get(seq=refused.audit_seq).outcome == "denied"
    assert refused.audit_seq == allowed.audit_seq + 1
    assert authorize(guard, Action.SITE_VIEW).audit_seq is None  # nothing written
    assert decide(users["baove"], Action.PLAYBACK, resources["recent"]).audit_seq is None


def test_a_snapshot_is_decided_as_the_footage_it_is_taken_from(users, resources) -> None:  # type: ignore[no-untyped-def]
    guard, finance = users["baove"], users["ketoan"]
    assert decide(guard, Action.SNAPSHOT, resources["bv"]).allowed  # live view
    assert decide(guard, Action.SNAPSHOT, FootageRange(resources["bv"], timezone.now())).allowed
    assert decide(guard, Action.SNAPSHOT, resources["recent"]).allowed  # playback, recent
    assert not decide(guard, Action.SNAPSHOT, resources["old"]).allowed  # beyond the window
    assert not decide(finance, Action.SNAPSHOT, resources["bv"]).allowed
    assert not decide(finance, Action.SNAPSHOT, resources["recent"]).allowed
    decision = authorize(Actor(user=finance), Action.SNAPSHOT, resources["recent"])
    assert not decision.allowed
    entry = AuditEntry.objects.get(seq=decision.audit_seq)
    assert (entry.action, entry.outcome) == ("footage.snapshot", "denied")
