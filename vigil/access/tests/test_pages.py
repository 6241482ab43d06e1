"""The request pages and the JSON API through the test client, per role."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from vigil.access.models import FootageRequest, JobState, RequestStatus
from vigil.audit.models import AuditEntry
from vigil.authz.models import Grant

pytestmark = pytest.mark.django_db


def _local(dt):  # type: ignore[no-untyped-def]
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M:%S")


def _file(client, **over):  # type: ignore[no-untyped-def]
    now = timezone.now()
    data = {
        "kind": "guardian",
        "form": "copy",
        "cameras": ["CAM-010"],
        "start": _local(now - timedelta(hours=3)),
        "end": _local(now - timedelta(hours=2, minutes=50)),
        "subject": "Bé An, lớp C2",
        "purpose": "Xem lại giờ đón trẻ chiều thứ Hai",
        "department": "",
        "recipient": "",
        **over,
    }
    return client.post("/requests/new/", data)


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("phuhuynh", "/requests/", 200),
        ("phuhuynh", "/requests/new/", 200),
        ("nghiencuu", "/requests/new/", 200),
        ("hieutruong", "/requests/", 200),
        ("admin", "/requests/", 200),
        ("kythuat", "/requests/", 403),
        ("kythuat", "/requests/new/", 403),
        ("hieutruong", "/requests/delegations/", 200),
        ("phohieutruong", "/requests/delegations/", 403),
        ("phuhuynh", "/requests/verify/", 200),
    ],
)
def test_pages_follow_the_permission_matrix(login, username, url, status) -> None:  # type: ignore[no-untyped-def]
    assert login(username).get(url).status_code == status


def test_parent_files_and_follows_a_request(client, login, users) -> None:  # type: ignore[no-untyped-def]
    parent = login("phuhuynh")
    form = parent.get("/requests/new/").content.decode()
    assert 'value="guardian"' in form and 'value="investigation"' not in form
    response = _file(parent)
    assert response.status_code == 302, response.content.decode()[:2000]
    req = FootageRequest.objects.get()
    page = parent.get(response["Location"]).content.decode()
    assert req.number in page
    assert 'data-testid="deadline-reply"' in page and 'data-testid="deadline-access"' in page
    assert 'data-testid="approve-form"' not in page  # no deciding one's own request
    listing = parent.get("/requests/").content.decode()
    assert f'data-request="{req.number}"' in listing
    # another parent does not see it
    from vigil.accounts.actor import Actor
    from vigil.accounts.services import create_user

    other, _password = create_user(
        Actor.cli(), username="phuhuynh2", role="guardian", password="Mật-khẩu-đủ-dài-42"
    )
    client.force_login(other, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(f"/requests/{req.pk}/").status_code == 404
    assert req.number not in client.get("/requests/").content.decode()


def test_the_form_reports_bad_fields(login) -> None:  # type: ignore[no-untyped-def]
    parent = login("phuhuynh")
    response = _file(parent, subject="", purpose="x")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="errorlist"') >= 2
    assert not FootageRequest.objects.exists()


def test_two_board_members_approve_in_the_page(login, users, client) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    _file(login("phuhuynh", Client()))
    req = FootageRequest.objects.get()
    principal = login("hieutruong", Client())
    page = principal.get(f"/requests/{req.pk}/").content.decode()
    assert 'data-testid="approve-form"' in page and 'name="extractor"' in page
    r = principal.post(
        f"/requests/{req.pk}/approve/",
        {"grant_days": "10", "extractor": "admin", "redact": "on", "watermark": "on", "note": ""},
    )
    assert r.status_code == 302
    req.refresh_from_db()
    assert req.status == RequestStatus.PARTLY_APPROVED and req.grant_days == 10
    board = login("phohieutruong", Client())
    page = board.get(f"/requests/{req.pk}/").content.decode()
    assert 'name="extractor"' not in page  # the second approval confirms the first's terms
    board.post(f"/requests/{req.pk}/approve/", {"note": "Đồng ý"})
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert Grant.objects.filter(source=req.grant_source).count() == 2
    it_page = login("admin", Client()).get(f"/requests/{req.pk}/").content.decode()
    assert 'data-testid="export-form"' in it_page


def test_refusal_reason_reaches_the_requester(login) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    parent = login("phuhuynh", Client())
    _file(parent)
    req = FootageRequest.objects.get()
    principal = login("hieutruong", Client())
    assert principal.post(f"/requests/{req.pk}/refuse/", {"reason": ""}).status_code == 302
    req.refresh_from_db()
    assert req.status == RequestStatus.SUBMITTED  # a refusal without a reason is not one
    principal.post(f"/requests/{req.pk}/refuse/", {"reason": "Không có camera ở lớp C2."})
    page = parent.get(f"/requests/{req.pk}/").content.decode()
    assert 'data-testid="refusal"' in page and "Không có camera ở lớp C2." in page


def test_api_files_decides_and_reports(login, users) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    now = timezone.now()
    parent = login("phuhuynh", Client())
    body = {
        "kind": "guardian",
        "form": "view",
        "purpose": "Xem lại giờ đón trẻ",
        "cameras": ["CAM-010"],
        "start": (now - timedelta(hours=3)).isoformat(),
        "end": (now - timedelta(hours=2)).isoformat(),
        "subject": "Bé An, lớp C2",
    }
    r = parent.post("/api/requests", json.dumps(body), content_type="application/json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert r.json()["reply_due"] is not None
    bad = parent.post(
        "/api/requests", json.dumps({**body, "cameras": ["NOPE"]}), content_type="application/json"
    )
    assert bad.status_code == 422
    assert (
        parent.post(
            f"/api/requests/{pk}/approve", "{}", content_type="application/json"
        ).status_code
        == 403
    )
    board = login("hieutruong", Client())
    r = board.post(f"/api/requests/{pk}/approve", "{}", content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert [g["grantee"] for g in r.json()["grants"]] == ["phuhuynh"]
    assert parent.get(f"/api/requests/{pk}").json()["status"] == "approved"
    stranger = login("nghiencuu", Client())
    assert stranger.get(f"/api/requests/{pk}").status_code == 404
    assert stranger.get("/api/requests").json() == []


def test_api_refuses_an_unknown_extractor(login, users) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    from vigil.access import services
    from vigil.accounts.actor import Actor
    from vigil.school.models import Camera

    now = timezone.now()
    req = services.file_request(
        Actor(user=users["giaovien"]),
        kind="complaint",
        form="copy",
        purpose="Xem lại sự việc ở hành lang",
        cameras=[Camera.objects.get(code="CAM-010")],
        start=now - timedelta(hours=3),
        end=now - timedelta(hours=2),
    )
    board = login("hieutruong", Client())
    url = f"/api/requests/{req.pk}/approve"
    r = board.post(url, json.dumps({"extractor": "nobody"}), content_type="application/json")
    assert r.status_code == 422, r.content
    assert "extractor" in r.content.decode()
    req.refresh_from_db()
    assert req.status == "submitted" and req.extractor is None
    r = board.post(url, json.dumps({"extractor": "admin"}), content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    req.refresh_from_db()
    assert req.extractor == users["admin"]


@pytest.mark.footage
def test_extraction_progress_and_download_pages(login, users, approved_copy) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    from vigil.access import worker

    req = approved_copy()
    it = login("admin", Client())
    assert it.post(f"/requests/{req.pk}/export/", {"keep": ""}).status_code == 302
    job = req.exports.get()
    row = it.get(f"/requests/exports/{job.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in row and 'data-state="queued"' in row
    worker.run_pending("test")
    job.refresh_from_db()
    assert job.state == JobState.DONE
    row = it.get(f"/requests/exports/{job.pk}/").content.decode()
    assert "hx-trigger" not in row and 'value="100"' in row  # polling stops when done
    staff = login("giaovien", Client())
    page = staff.get(f"/requests/{req.pk}/").content.decode()
    assert 'data-testid="link-submit"' in page and 'data-testid="custody"' in page
    link_page = staff.post(f"/requests/packages/{job.package.pk}/link/").content.decode()
    url = link_page.split('data-testid="download-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    response = staff.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert len(body) == int(response["Content-Length"])
    assert staff.get(url).status_code == 403  # once
    from django.core.files.uploadedfile import SimpleUploadedFile

    verdict = staff.post(
        "/requests/verify/",
        {"file": SimpleUploadedFile("goi.zip", body, content_type="application/zip")},
    ).content.decode()
    assert 'data-testid="verify-verdict"' in verdict and "msg-success" in verdict
    damaged = bytearray(body)
    damaged[len(body) // 2] ^= 1
    verdict = staff.post(
        "/requests/verify/",
        {"file": SimpleUploadedFile("goi.zip", bytes(damaged), content_type="application/zip")},
    ).content.decode()
    assert "msg-error" in verdict and "content altered" in verdict
    assert AuditEntry.objects.filter(action="package.download", outcome="success").count() == 1


def test_dashboard_shows_what_waits(login) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    _file(login("phuhuynh", Client()))
    req = FootageRequest.objects.get()
    principal = login("hieutruong", Client()).get("/").content.decode()
    assert 'data-testid="requests-card"' in principal and req.number in principal
    parent = login("phuhuynh", Client()).get("/").content.decode()
    assert req.number in parent
    assert 'data-testid="requests-card"' not in login("kythuat", Client()).get("/").content.decode()


@pytest.mark.footage
def test_the_package_media_url_serves_ranges_and_audits_each_session(login, exported) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    package = exported()
    clip = json.loads(package.manifest)["clips"][0]["file"].removeprefix("data/")
    url = f"/requests/packages/{package.pk}/media/{clip}"

    def plays() -> int:
        return AuditEntry.objects.filter(action="footage.playback", outcome="success").count()

    it = login("admin", Client())
    first = it.get(url, HTTP_RANGE="bytes=100-")  # a player that starts in the middle
    assert first.status_code == 206 and first["Content-Range"].startswith("bytes 100-")
    assert plays() == 1
    assert it.get(url, HTTP_RANGE="bytes=0-99").status_code == 206
    assert plays() == 1  # the same session: decided, not audited again
    other = login("hieutruong", Client())
    assert other.get(url).status_code == 200
    assert plays() == 2
    staff = login("giaovien", Client())  # may download the package, not play it here
    assert staff.get(url, HTTP_RANGE="bytes=5-").status_code == 403
    assert AuditEntry.objects.filter(action="footage.playback", outcome="denied").count() == 1


def test_the_package_media_url_serves_only_cameras_of_the_request(login, exported) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    package = exported()
    manifest = json.loads(package.manifest)
    clip = manifest["clips"][0]
    name = clip["file"].removeprefix("data/")
    url = f"/requests/packages/{package.pk}/media/{name}"
    board = login("hieutruong", Client())  # may play back every camera
    assert board.get(url).status_code == 200
    assert clip["camera"] == "CAM-010"
    clip["camera"] = "CAM-011"  # a camera the request never asked for
    package.manifest = json.dumps(manifest)
    package.save(update_fields=["manifest"])
    plays = AuditEntry.objects.filter(action="footage.playback").count()
    assert board.get(url).status_code == 404
    assert board.get(f"/requests/packages/{package.pk}/media/nope.mp4").status_code == 404
    assert AuditEntry.objects.filter(action="footage.playback").count() == plays
