"""Unapproved, expired, revoked and out-of-range access is refused on every path this app
serves — the export service, the extraction worker, the pages, the JSON API, download
links and the package media URL — and on playback and live through the one permission
service; each refusal of footage is audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from vigil.access import services, worker
from vigil.access.models import JobState, Package
from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.models import Grant
from vigil.authz.rules import Action
from vigil.authz.services import AccessDenied, FootageRange, decide
from vigil.school.models import Camera

pytestmark = [pytest.mark.django_db, pytest.mark.footage]


def _expire(grant: Grant) -> None:
    grant.valid_from = timezone.now() - timedelta(days=2)
    grant.valid_until = timezone.now() - timedelta(seconds=1)
    grant.save()


def _revoke(grant: Grant) -> None:
    services.revoke_grant(Actor(user=grant.created_by), grant, "Thu hồi để kiểm tra")


def _narrow(grant: Grant) -> None:
    """The grant keeps only the first second of its range: the rest is out of range."""
    grant.footage_end = grant.footage_start + timedelta(seconds=1)
    grant.save()


def _other_camera(grant: Grant) -> None:
    grant.cameras.set([Camera.objects.get(code="CAM-011")])


SPOILERS: dict[str, Callable[[Grant], None]] = {
    "expired": _expire,
    "revoked": _revoke,
    "out-of-range time": _narrow,
    "out-of-range camera": _other_camera,
}


def _denied_since(seq: int, action: str) -> int:
    return AuditEntry.objects.filter(seq__gt=seq, action=action, outcome="denied").count()


def _last_seq() -> int:
    return AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_unapproved_requests_open_no_path(users, approved_copy, login) -> None:  # type: ignore[no-untyped-def]
    req = approved_copy()
    # a second request over the same footage, not decided yet
    pending = services.file_request(
        Actor(user=users["giaovien"]),
        kind="complaint",
        form="copy",
        purpose="Một yêu cầu chưa được duyệt",
        cameras=list(req.cameras.all()),
        start=req.footage_start - timedelta(hours=1),
        end=req.footage_end - timedelta(hours=1),
    )
    seq = _last_seq()
    with pytest.raises(AccessDenied):
        services.create_export(Actor(user=users["admin"]), pending)
    it = login("admin", Client())
    assert it.post(f"/requests/{pending.pk}/export/", {"keep": ""}).status_code == 403
    api = it.post(f"/api/requests/{pending.pk}/exports", "{}", content_type="application/json")
    assert api.status_code == 403
    assert _denied_since(seq, "footage.export") == 3
    rng = FootageRange(pending.cameras.get(), pending.footage_start, pending.footage_end)
    assert not decide(users["giaovien"], Action.PLAYBACK, rng).allowed
    assert not decide(users["giaovien"], Action.DOWNLOAD, rng).allowed
    assert not decide(users["giaovien"], Action.LIVE_VIEW, rng.camera).allowed
    # refused requests do not open one either
    services.refuse(Actor(user=users["hieutruong"]), pending, "Không cần thiết")
    with pytest.raises(AccessDenied):
        services.create_export(Actor(user=users["admin"]), pending)


@pytest.mark.parametrize("how", list(SPOILERS))
def test_spoiled_grants_are_refused_on_every_path(users, exported, login, how) -> None:  # type: ignore[no-untyped-def]
    package: Package = exported()
    req = package.request
    grants = {g.grantee.username: g for g in Grant.objects.filter(source=req.grant_source)}
    owner = Actor(user=users["giaovien"])
    # a link made while everything was valid, and a second extraction queued
    _link, early_token = services.create_download_link(owner, package)
    clip = json.loads(package.manifest)["clips"][0]["file"].removeprefix("data/")
    it = login("admin", Client())
    assert it.get(f"/requests/packages/{package.pk}/media/{clip}").status_code == 200
    job = services.create_export(Actor(user=users["admin"]), req)

    for grant in grants.values():
        SPOILERS[how](Grant.objects.get(pk=grant.pk))
    seq = _last_seq()

    # the requester: links, downloads, API, pages
    with pytest.raises(AccessDenied):
        services.create_download_link(owner, package)
    with pytest.raises(AccessDenied):
        services.open_download(owner, early_token)
    staff = login("giaovien", Client())
    assert staff.post(f"/requests/packages/{package.pk}/link/").status_code == 403
    assert staff.post(f"/api/requests/packages/{package.pk}/links").status_code == 403
    assert staff.get(f"/requests/download/{early_token}/").status_code == 403
    page = staff.get(f"/requests/{req.pk}/").content.decode()
    assert 'data-testid="link-submit"' not in page
    assert staff.get(f"/api/requests/{req.pk}").json()["packages"][0]["may_download"] is False
    # IT: the media URL, a new extraction, the queued one, a retry
    assert it.get(f"/requests/packages/{package.pk}/media/{clip}").status_code == 403
    assert (
        it.get(
            f"/requests/packages/{package.pk}/media/{clip}", HTTP_RANGE="bytes=1000-"
        ).status_code
        == 403
    )
    with pytest.raises(AccessDenied):
        services.create_export(Actor(user=users["admin"]), req)
    assert it.post(f"/requests/{req.pk}/export/", {"keep": ""}).status_code == 403
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "grant" in job.error.lower() or "quyền" in job.error.lower()
    assert not Package.objects.filter(job=job).exists()
    with pytest.raises(AccessDenied):
        services.retry_export(Actor(user=users["admin"]), job)
    # playback and live through the permission service, for both grantees
    rng = FootageRange(Camera.objects.get(code="CAM-010"), req.footage_start, req.footage_end)
    for name in ("giaovien", "admin"):
        for action in (Action.PLAYBACK, Action.DOWNLOAD, Action.EXPORT):
            assert not decide(users[name], action, rng).allowed
    # every refusal of footage was audited
    assert _denied_since(seq, "footage.download") >= 4
    assert _denied_since(seq, "footage.playback") >= 2
    assert _denied_since(seq, "footage.export") >= 3


def test_a_grant_revoked_during_extraction_stops_it_before_release(users, approved_copy) -> None:  # type: ignore[no-untyped-def]
    req = approved_copy()
    job = services.create_export(Actor(user=users["admin"]), req)
    grant = Grant.objects.get(pk=job.grant_id)
    claimed = worker.claim("test-worker")
    assert claimed is not None and claimed.pk == job.pk
    # the board revokes while the clips are being copied: the worker checks again
    # before it publishes anything
    original = worker._publish

    def revoke_then_publish(run, *args, **kwargs):  # type: ignore[no-untyped-def]
        _revoke(Grant.objects.get(pk=grant.pk))
        return original(run, *args, **kwargs)

    worker._publish = revoke_then_publish  # type: ignore[assignment]
    try:
        worker.run_job(claimed, "test-worker")
    finally:
        worker._publish = original  # type: ignore[assignment]
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert not Package.objects.exists()
    assert not any(p.name.startswith(req.number) for p in Path(settings.PATHS.exports).iterdir())


@pytest.mark.parametrize("how", list(SPOILERS))
def test_an_approved_view_plays_back_until_its_grant_is_spoiled(
    users, record_footage, past, login, how
) -> None:  # type: ignore[no-untyped-def]
    """Viewing on site goes through the live app's playback (issue 5): the grant an
    approval creates opens it, for that camera and range only, and stops opening it —
    new sessions and tokens already handed out — the moment the grant is spoiled."""
    record_footage("CAM-010", past(), 12)
    head = users["totruongmg"]
    req = services.file_request(
        Actor(user=head),
        kind="internal_review",
        form="view",
        purpose="Xem lại giờ ăn trưa của lớp C2",
        cameras=[Camera.objects.get(code="CAM-010")],
        start=past(1),
        end=past(9),
    )
    services.approve(Actor(user=users["hieutruong"]), req)
    client = login("totruongmg", Client())

    def open_playback(start, end, code="CAM-010"):  # type: ignore[no-untyped-def]
        body = {"cameras": [code], "start": start.isoformat(), "end": end.isoformat()}
        r = client.post("/api/live/playback", json.dumps(body), content_type="application/json")
        assert r.status_code == 200, r.content
        return r.json()["cameras"][0]

    inside = open_playback(req.footage_start, req.footage_end)
    assert inside["allowed"], inside
    index = client.get(f"/live/media/{inside['token']}/index")
    assert index.status_code == 200 and index.json()["segments"]
    segment = index.json()["segments"][0]["id"]
    assert client.get(f"/live/media/{inside['token']}/seg/{segment}").status_code == 200
    # never more than the grant: a wider range, another camera, the live view
    assert not open_playback(req.footage_start - timedelta(hours=1), req.footage_end)["allowed"]
    assert not open_playback(req.footage_start, req.footage_end, "CAM-011")["allowed"]
    live = client.post(
        "/api/live/sessions",
        json.dumps({"cameras": ["CAM-010"], "stream": "sub"}),
        content_type="application/json",
    )
    assert live.status_code == 200 and not live.json()["cameras"][0]["allowed"]

    SPOILERS[how](Grant.objects.get(source=req.grant_source))
    seq = _last_seq()
    assert not open_playback(req.footage_start, req.footage_end)["allowed"]
    assert client.get(f"/live/media/{inside['token']}/index").status_code == 403
    assert client.get(f"/live/media/{inside['token']}/seg/{segment}").status_code == 403
    assert _denied_since(seq, "footage.playback") >= 1
