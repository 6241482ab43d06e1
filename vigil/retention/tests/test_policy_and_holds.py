"""The retention policy (floor only upwards, ceiling never below the floor) and evidence
holds (who may place and release them, what they cover), each change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.services import AccessDenied
from vigil.retention import policy, services
from vigil.retention.models import Hold
from vigil.school.models import Camera
from vigil.school.validation import ValidationFailed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def actor(users, name: str) -> Actor:  # type: ignore[no-untyped-def]
    return Actor(user=users[name], ip="10.0.0.5", via="web")


def test_site_floor_defaults_to_the_configured_regulation_floor(demo_site) -> None:  # type: ignore[no-untyped-def]
    e = policy.site_effective()
    assert (e.floor_days, e.ceiling_days, e.floor_source) == (20, None, "regulation")


def test_site_policy_can_raise_the_floor_but_not_lower_it(users) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as exc:
        services.set_site_policy(actor(users, "admin"), floor_days=15, ceiling_days=None)
    assert exc.value.errors[0].field == "floor_days"
    assert "below 20 days" in exc.value.errors[0].reason
    services.set_site_policy(actor(users, "admin"), floor_days=25, ceiling_days=40)
    e = policy.site_effective()
    assert (e.floor_days, e.ceiling_days, e.floor_source) == (25, 40, "site")
    entry = AuditEntry.objects.filter(action="retention.site_policy").latest("seq")
    assert entry.detail["after"] == {"floor_days": 25, "ceiling_days": 40}
    assert entry.actor_username == "admin"


def test_a_ceiling_below_the_floor_is_refused(users) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed, match="cannot be below the floor"):
        services.set_site_policy(actor(users, "hieutruong"), floor_days=None, ceiling_days=10)


def test_only_settings_managers_change_the_site_policy(users) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AccessDenied):
        services.set_site_policy(actor(users, "phohieutruong"), floor_days=30, ceiling_days=None)
    denied = AuditEntry.objects.latest("seq")
    assert (denied.action, denied.outcome) == ("settings.manage", "denied")


def test_a_camera_floor_below_the_site_floor_is_refused_with_a_clear_error(users) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-010")
    services.set_site_policy(actor(users, "admin"), floor_days=25, ceiling_days=None)
    with pytest.raises(ValidationFailed) as exc:
        services.set_camera_policy(actor(users, "admin"), cam, floor_days=21, ceiling_days=None)
    assert exc.value.errors[0].field == "floor_days"
    assert "can only be raised" in exc.value.errors[0].reason
    assert "25" in exc.value.errors[0].reason
    services.set_camera_policy(actor(users, "admin"), cam, floor_days=45, ceiling_days=60)
    e = policy.effective(cam.pk)
    assert (e.floor_days, e.ceiling_days, e.floor_source, e.ceiling_source) == (
        45,
        60,
        "camera",
        "camera",
    )
    assert AuditEntry.objects.filter(
        action="retention.camera_policy", object_id=str(cam.pk)
    ).exists()
    # Empty values remove the override.
    assert (
        services.set_camera_policy(actor(users, "admin"), cam, floor_days="", ceiling_days="")
        is None
    )
    assert policy.effective(cam.pk).floor_days == 25


def test_camera_policy_needs_site_management(users) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-010")
    with pytest.raises(AccessDenied):
        services.set_camera_policy(
            actor(users, "totruongbv"), cam, floor_days=30, ceiling_days=None
        )


def test_raising_the_site_floor_above_a_camera_ceiling_keeps_the_floor(users) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-011")
    services.set_camera_policy(actor(users, "admin"), cam, floor_days=None, ceiling_days=22)
    services.set_site_policy(actor(users, "admin"), floor_days=30, ceiling_days=None)
    e = policy.effective(cam.pk)
    assert e.floor_days == 30 and e.ceiling_days == 30


# ---------------------------------------------------------------------------- holds


@pytest.fixture
def span():  # type: ignore[no-untyped-def]
    now = timezone.now()
    return now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=2)


def test_security_head_places_a_hold_and_it_is_audited(users, span) -> None:  # type: ignore[no-untyped-def]
    cams = list(Camera.objects.filter(code__in=["CAM-001", "CAM-002"]))
    hold = services.place_hold(
        actor(users, "totruongbv"), cams, *span, "Phụ huynh khiếu nại", source="request:42"
    )
    assert hold.is_active and hold.placed_by == users["totruongbv"] and hold.source == "request:42"
    assert services.is_held(cams[0], span[0] + timedelta(minutes=5), span[0] + timedelta(minutes=6))
    assert not services.is_held(cams[0], span[1], span[1] + timedelta(minutes=1))  # [start, end)
    assert not services.is_held(Camera.objects.get(code="CAM-003"), *span)
    entry = AuditEntry.objects.filter(action="hold.place").latest("seq")
    assert entry.detail["cameras"] == ["CAM-001", "CAM-002"]
    assert entry.detail["source"] == "request:42"


def test_a_guard_may_not_place_a_hold(users, span) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AccessDenied):
        services.place_hold(actor(users, "baove"), Camera.objects.get(code="CAM-001"), *span, "x")
    assert not Hold.objects.exists()


def test_only_the_board_releases_a_hold(users, span) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    hold = services.place_hold(actor(users, "totruongbv"), cam, *span, "Sự việc 12/3")
    for name in ("totruongbv", "baove", "admin"):
        with pytest.raises(AccessDenied):
            services.release_hold(actor(users, name), hold, "không cần nữa")
    with pytest.raises(ValidationFailed, match="why"):
        services.release_hold(actor(users, "phohieutruong"), hold, "  ")
    released = services.release_hold(actor(users, "phohieutruong"), hold, "Đã lập biên bản xong")
    assert released.released_by == users["phohieutruong"] and not released.is_active
    assert not services.is_held(cam, *span)
    with pytest.raises(ValidationFailed, match="already released"):
        services.release_hold(actor(users, "hieutruong"), hold, "again")
    entry = AuditEntry.objects.filter(action="hold.release").latest("seq")
    assert entry.detail["reason"] == "Đã lập biên bản xong"


@pytest.mark.parametrize(
    ("shift_start", "shift_end", "reason", "field"),
    [
        (timedelta(hours=1), timedelta(hours=-1), "x", "end"),
        (timedelta(days=2), timedelta(days=3), "x", "start"),
        (timedelta(hours=-1), timedelta(days=3), "x", "end"),
        (timedelta(hours=-2), timedelta(hours=-1), " ", "reason"),
    ],
)
def test_hold_validation(users, shift_start, shift_end, reason, field) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    with pytest.raises(ValidationFailed) as exc:
        services.place_hold(
            actor(users, "hieutruong"),
            Camera.objects.get(code="CAM-001"),
            now + shift_start,
            now + shift_end,
            reason,
        )
    assert exc.value.errors[0].field == field
    with pytest.raises(ValidationFailed, match="at least one camera"):
        services.place_hold(actor(users, "hieutruong"), [], now - timedelta(hours=1), now, "x")
