from datetime import timedelta

import pytest
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.authz.models import Grant
from vigil.authz.rules import Action
from vigil.authz.services import FootageRange, authorize, cameras_for, decide
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(users):  # type: ignore[no-untyped-def]
    now = timezone.now()
    cam = Camera.objects.get(code="CAM-020")
    other = Camera.objects.get(code="CAM-021")
    start, end = now - timedelta(days=5), now - timedelta(days=5) + timedelta(hours=1)
    grant = Grant.objects.create(
        grantee=users["nghiencuu"],
        actions="footage.playback,footage.download",
        footage_start=start,
        footage_end=end,
        valid_from=now - timedelta(minutes=1),
        valid_until=now + timedelta(days=7),
        source="test",
        created_by=users["hieutruong"],
    )
    grant.cameras.add(cam)
    return {
        "user": users["nghiencuu"],
        "cam": cam,
        "other": other,
        "grant": grant,
        "start": start,
        "end": end,
    }


def test_grant_allows_only_its_cameras_range_and_actions(setup) -> None:  # type: ignore[no-untyped-def]
    user, cam, start, end = setup["user"], setup["cam"], setup["start"], setup["end"]
    inside = FootageRange(cam, start + timedelta(minutes=10), start + timedelta(minutes=20))
    d = decide(user, Action.PLAYBACK, inside)
    assert d.allowed and d.via == "grant" and d.grant_id == setup["grant"].pk
    assert decide(user, Action.DOWNLOAD, inside).allowed
    assert not decide(user, Action.EXPORT, inside).allowed
    assert not decide(user, Action.LIVE_VIEW, cam).allowed
    straddling = FootageRange(cam, end - timedelta(minutes=5), end + timedelta(minutes=5))
    assert not decide(user, Action.PLAYBACK, straddling).allowed
    before = FootageRange(cam, start - timedelta(minutes=5), start + timedelta(minutes=1))
    assert not decide(user, Action.PLAYBACK, before).allowed
    assert not decide(
        user, Action.PLAYBACK, FootageRange(setup["other"], inside.start, inside.end)
    ).allowed
    assert list(cameras_for(user, Action.PLAYBACK)) == [cam]


def test_revoked_and_expired_grants_stop_working_at_once(setup) -> None:  # type: ignore[no-untyped-def]
    user, cam, start = setup["user"], setup["cam"], setup["start"]
    inside = FootageRange(cam, start, start + timedelta(minutes=1))
    grant = setup["grant"]
    assert decide(user, Action.PLAYBACK, inside).allowed
    grant.revoked_at = timezone.now()
    grant.save()
    assert not decide(user, Action.PLAYBACK, inside).allowed
    grant.revoked_at = None
    grant.valid_until = timezone.now() - timedelta(seconds=1)
    grant.valid_from = timezone.now() - timedelta(days=1)
    grant.save()
    assert not decide(user, Action.PLAYBACK, inside).allowed
    assert not cameras_for(user, Action.PLAYBACK).exists()


def test_grant_use_is_audited_with_the_grant(setup) -> None:  # type: ignore[no-untyped-def]
    from vigil.audit.models import AuditEntry

    inside = FootageRange(setup["cam"], setup["start"], setup["start"] + timedelta(minutes=1))
    authorize(Actor(user=setup["user"]), Action.PLAYBACK, inside)
    entry = AuditEntry.objects.latest("seq")
    assert entry.action == "footage.playback"
    assert entry.detail["via"] == "grant"
    assert entry.detail["grant"] == setup["grant"].pk


def test_live_through_a_grant_needs_now_inside_the_range(users) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    cam = Camera.objects.get(code="CAM-030")
    grant = Grant.objects.create(
        grantee=users["nghiencuu"],
        actions="footage.live",
        footage_start=now - timedelta(hours=1),
        footage_end=now + timedelta(hours=1),
        valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(hours=1),
        source="test",
    )
    grant.cameras.add(cam)
    assert decide(users["nghiencuu"], Action.LIVE_VIEW, cam).allowed
    grant.footage_end = now - timedelta(minutes=1)
    grant.save()
    assert not decide(users["nghiencuu"], Action.LIVE_VIEW, cam).allowed


def test_cameras_for_lists_every_camera_for_roles_that_see_all(users, setup) -> None:  # type: ignore[no-untyped-def]
    # A grant on top of a role that already sees everything must not narrow the list.
    setup["grant"].grantee = users["phohieutruong"]
    setup["grant"].save()
    assert cameras_for(users["phohieutruong"], Action.PLAYBACK).count() == 86
    assert cameras_for(users["baove"], Action.LIVE_VIEW).count() == 86
    assert cameras_for(users["baove"], Action.HEALTH_VIEW).count() == 86
    assert cameras_for(users["giaovien"], Action.LIVE_VIEW).count() == 0
