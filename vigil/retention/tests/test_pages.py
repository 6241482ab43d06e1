"""Retention pages and API: who sees what, forms that change the policy and holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from vigil.audit.models import AuditEntry
from vigil.retention import coverage, reports
from vigil.retention.models import CameraPolicy, Hold, SitePolicy

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("phohieutruong", "/retention/storage/", 200),
        ("ketoan", "/retention/storage/", 200),
        ("admin", "/retention/storage/", 200),
        ("baove", "/retention/storage/", 403),
        ("admin", "/retention/policy/", 200),
        ("phohieutruong", "/retention/policy/", 403),
        ("totruongbv", "/retention/holds/", 200),
        ("phohieutruong", "/retention/holds/", 200),
        ("baove", "/retention/holds/", 403),
        ("admin", "/retention/holds/", 403),
        ("ketoan", "/retention/coverage/", 200),
        ("totruongbv", "/retention/coverage/", 200),
        ("baove", "/retention/coverage/", 403),
        ("admin", "/retention/reports/verify/", 200),
    ],
)
def test_pages_follow_the_permission_matrix(login, username, url, status) -> None:  # type: ignore[no-untyped-def]
    assert login(username).get(url).status_code == status


def test_storage_page_shows_three_recorders_and_what_if(login) -> None:  # type: ignore[no-untyped-def]
    c = login("phohieutruong")
    page = c.get("/retention/storage/", {"declared": "on"}).content.decode()
    for code in ("NVR-01", "NVR-02", "NVR-03"):
        assert f'data-recorder="{code}"' in page
    assert "20.6" in page and "23.0" in page and "21.7" in page
    what_if = c.get(
        "/retention/storage/", {"declared": "on", "add": "NVR-03:4096"}
    ).content.decode()
    assert "18.4" in what_if and "+1" in what_if
    bad = c.get("/retention/storage/", {"add": "nonsense"}).content.decode()
    assert "hãy ghi theo dạng ĐẦUGHI:KBPS" in bad  # the error, in the site's language


def test_policy_form_refuses_lowering_and_saves_raising(login) -> None:  # type: ignore[no-untyped-def]
    c = login("admin")
    r = c.post("/retention/policy/", {"floor_days": "10", "ceiling_days": ""})
    assert r.status_code == 200 and "không được thấp hơn 20 ngày" in r.content.decode()
    r = c.post("/retention/policy/", {"floor_days": "30", "ceiling_days": "60"})
    assert r.status_code == 302
    assert (SitePolicy.objects.get().floor_days, SitePolicy.objects.get().ceiling_days) == (30, 60)


def test_camera_panel_and_camera_policy_form(login) -> None:  # type: ignore[no-untyped-def]
    c = login("admin")
    page = c.get("/site/cameras/CAM-007/").content.decode()
    assert 'data-testid="retention-panel"' in page and "/retention/cameras/CAM-007/policy/" in page
    r = c.post(
        "/retention/cameras/CAM-007/policy/", {"floor_days": "5", "ceiling_days": ""}, follow=True
    )
    assert "chỉ được nâng lên" in r.content.decode()
    assert not CameraPolicy.objects.exists()
    c.post("/retention/cameras/CAM-007/policy/", {"floor_days": "40", "ceiling_days": ""})
    assert CameraPolicy.objects.get().floor_days == 40
    guard_page = login("baove", Client()).get("/site/cameras/CAM-007/").content.decode()
    assert 'data-testid="retention-panel"' not in guard_page


def test_holds_are_placed_by_the_security_head_and_released_by_the_board(login) -> None:  # type: ignore[no-untyped-def]
    head = login("totruongbv")
    now = timezone.localtime()
    form = {
        "cameras": ["CAM-010", "CAM-011"],
        "start": (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        "end": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "Trẻ bị ngã ở sân chơi",
        "source": "BB-2026-03",
    }
    assert head.post("/retention/holds/", form).status_code == 302
    hold = Hold.objects.get()
    assert sorted(hold.cameras.values_list("code", flat=True)) == ["CAM-010", "CAM-011"]
    page = head.get("/retention/holds/").content.decode()
    assert f'data-hold="{hold.pk}"' in page and 'data-testid="release-form"' not in page
    # The security head cannot release, even by posting directly.
    head.post(f"/retention/holds/{hold.pk}/release/", {"reason": "x"})
    hold.refresh_from_db()
    assert hold.is_active
    assert AuditEntry.objects.filter(action="hold.release", outcome="denied").exists()
    board = login("phohieutruong", Client())
    assert 'data-testid="release-form"' in board.get("/retention/holds/").content.decode()
    board.post(f"/retention/holds/{hold.pk}/release/", {"reason": "Đã xử lý"})
    hold.refresh_from_db()
    assert not hold.is_active and hold.release_reason == "Đã xử lý"


def test_hold_form_errors_are_shown(login) -> None:  # type: ignore[no-untyped-def]
    c = login("hieutruong")
    now = timezone.localtime()
    r = c.post(
        "/retention/holds/",
        {
            "cameras": ["CAM-010"],
            "start": now.strftime("%Y-%m-%dT%H:%M"),
            "end": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "x",
        },
    )
    assert r.status_code == 200 and "phải sau thời điểm bắt đầu" in r.content.decode()


def test_coverage_page_exports_and_verify_upload(login, demo_site) -> None:  # type: ignore[no-untyped-def]
    from vigil.accounts.actor import Actor

    day = coverage.local_day(timezone.now()) - timedelta(days=2)
    reports.sign_day(day, actor=Actor.system("retention"))
    c = login("ketoan")
    q = {"first": day.isoformat(), "last": day.isoformat()}
    page = c.get("/retention/coverage/", {**q, "day": day.isoformat()}).content.decode()
    assert f'data-day="{day.isoformat()}"' in page and 'data-camera="CAM-086"' in page
    csv_response = c.get("/retention/coverage/export.csv", q)
    assert csv_response["Content-Type"].startswith("text/csv")
    pdf_response = c.get("/retention/coverage/export.pdf", q)
    assert pdf_response.content.startswith(b"%PDF")
    assert AuditEntry.objects.filter(action="retention.report.export").count() == 2
    from django.core.files.uploadedfile import SimpleUploadedFile

    ok = c.post(
        "/retention/reports/verify/",
        {"file": SimpleUploadedFile("r.pdf", pdf_response.content, "application/pdf")},
    ).content.decode()
    assert 'data-testid="verify-verdict"' in ok and "msg-success" in ok
    tampered = csv_response.content.decode().replace(",yes,", ",no,", 1).encode()
    bad = c.post(
        "/retention/reports/verify/", {"file": SimpleUploadedFile("r.csv", tampered, "text/csv")}
    ).content.decode()
    assert "msg-error" in bad
    detail = c.get(f"/retention/reports/{day.isoformat()}/").content.decode()
    assert "msg-success" in detail and 'data-testid="report-payload"' in detail
    envelope = c.get(f"/retention/reports/{day.isoformat()}/", {"download": "json"})
    assert reports.verify_file(envelope.content).ok


def test_api_plan_volumes_holds_and_coverage(login) -> None:  # type: ignore[no-untyped-def]
    c = login("phohieutruong", Client(enforce_csrf_checks=False))
    plan = c.get("/api/retention/plan", {"declared": "true", "add": ["NVR-03:4096"]}).json()
    assert [r["code"] for r in plan["recorders"]] == ["NVR-01", "NVR-02", "NVR-03"]
    assert plan["holds_floor"] is False
    vols = c.get("/api/retention/volumes").json()
    assert len(vols) == 3 and all(v["recording_allowed"] for v in vols)
    now = timezone.now()
    r = c.post(
        "/api/retention/holds",
        {
            "cameras": ["CAM-020"],
            "start": (now - timedelta(hours=2)).isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
            "reason": "request",
            "source": "request:7",
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    hold_id = r.json()["id"]
    assert [h["id"] for h in c.get("/api/retention/holds").json()] == [hold_id]
    released = c.post(
        f"/api/retention/holds/{hold_id}/release",
        {"reason": "done"},
        content_type="application/json",
    )
    assert released.status_code == 200 and released.json()["released_by"] == "phohieutruong"
    bad = c.post(
        "/api/retention/holds",
        {"cameras": ["NOPE"], "start": now.isoformat(), "end": now.isoformat(), "reason": "x"},
        content_type="application/json",
    )
    assert bad.status_code == 422
    guard = login("baove", Client())
    assert guard.get("/api/retention/holds").status_code == 403
    assert guard.get("/api/retention/plan").status_code == 403
    cov = c.get("/api/retention/coverage", {"first": coverage.local_day(now).isoformat()}).json()
    assert len(cov["rows"]) == 86


def test_pages_speak_the_site_language_and_english_on_request(login) -> None:  # type: ignore[no-untyped-def]
    c = login("phohieutruong")
    assert "Dung lượng và thời hạn lưu trữ" in c.get("/retention/storage/").content.decode()
    assert "Giữ bằng chứng" in c.get("/retention/holds/").content.decode()
    c.cookies["vigil_language"] = "en"
    assert "Storage and retention" in c.get("/retention/storage/").content.decode()
