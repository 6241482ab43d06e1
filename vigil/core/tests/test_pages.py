import pytest

from vigil.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/site/cameras/",
    "/site/cameras/CAM-001/",
    "/site/areas/",
    "/site/departments/",
    "/site/recorders/",
]


@pytest.mark.parametrize("username", ["hieutruong", "baove", "admin", "ketoan", "kythuat"])
def test_inventory_pages_render_for_staff_roles(login, username) -> None:  # type: ignore[no-untyped-def]
    c = login(username)
    for url in PAGES:
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code)


def test_camera_list_shows_86(login) -> None:  # type: ignore[no-untyped-def]
    page = login("baove").get("/site/cameras/").content.decode()
    assert page.count('data-camera="CAM-') == 86


def test_outsiders_are_refused_and_the_refusal_is_audited(login) -> None:  # type: ignore[no-untyped-def]
    c = login("nghiencuu")
    r = c.get("/site/cameras/")
    assert r.status_code == 403
    entry = AuditEntry.objects.latest("seq")
    assert (entry.action, entry.outcome, entry.actor_username) == (
        "site.view",
        "denied",
        "nghiencuu",
    )
    assert c.get("/api/cameras/").status_code == 403
    assert c.get("/audit/").status_code == 403


def test_audit_search_for_the_board(login) -> None:  # type: ignore[no-untyped-def]
    c = login("phohieutruong")
    r = c.get("/audit/", {"action": "demo."})
    assert r.status_code == 200
    assert "demo.seed" in r.content.decode()
    assert login("admin").get("/audit/").status_code == 403


def test_camera_edit_shows_errors_and_saves(login) -> None:  # type: ignore[no-untyped-def]
    c = login("admin")
    form = c.get("/site/cameras/CAM-005/edit/").context["form"]
    data = {k: (v if v is not None else "") for k, v in form.initial.items()}
    data["main_url"] = "rtsp://:99/x"
    r = c.post("/site/cameras/CAM-005/edit/", data)
    assert r.status_code == 200
    assert "no host" in r.content.decode()
    data["main_url"] = "rtsp://cam:pw@10.9.9.9/live"
    data["username"] = ""
    r = c.post("/site/cameras/CAM-005/edit/", data)
    assert r.status_code == 302
    page = c.get("/site/cameras/CAM-005/").content.decode()
    assert "rtsp://10.9.9.9/live" in page
    assert "pw@" not in page


def test_api_lists_cameras_without_secrets(login) -> None:  # type: ignore[no-untyped-def]
    data = login("baove").get("/api/cameras/").json()
    assert len(data) == 86
    assert all("password" not in str(row).lower() for row in data)
    assert data[0]["has_credential"] is True


def test_api_add_camera_needs_csrf_and_validates(login) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    c = login("admin", Client(enforce_csrf_checks=True))
    r = c.post("/api/cameras/", {"code": "X"}, content_type="application/json")
    assert r.status_code == 403  # no CSRF token: a forged request changes nothing


def test_language_switch(login) -> None:  # type: ignore[no-untyped-def]
    c = login("baove")
    assert "Máy quay" in c.get("/").content.decode() or "Camera" in c.get("/").content.decode()
    c.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Sign out" in c.get("/").content.decode()
    c.post("/i18n/setlang/", {"language": "vi", "next": "/"})
    assert "Đăng xuất" in c.get("/").content.decode()


def test_times_render_in_ho_chi_minh(login) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    entry = AuditEntry.objects.latest("seq")
    local = timezone.localtime(entry.created_at)
    assert local.utcoffset().total_seconds() == 7 * 3600
    page = login("hieutruong").get("/audit/").content.decode()
    assert local.strftime("%Y-%m-%d %H:%M") in page


def test_vietnamese_whatever_the_browser_language(login) -> None:  # type: ignore[no-untyped-def]
    c = login("baove")
    page = c.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert 'lang="vi"' in page and "Đăng xuất" in page


def test_one_translation_per_string_across_apps() -> None:
    """Django merges every app's catalog; a string translated two ways would show either."""
    import glob

    import polib

    seen: dict[tuple[str | None, str], dict[str, str]] = {}
    for path in glob.glob("vigil/*/locale/vi/LC_MESSAGES/django.po"):
        for entry in polib.pofile(path):
            if entry.msgstr and not entry.msgid_plural:
                # a context (pgettext) makes it another string
                seen.setdefault((entry.msgctxt, entry.msgid), {})[path] = entry.msgstr
    clashes = {k: v for k, v in seen.items() if len(set(v.values())) > 1}
    assert not clashes, clashes


def test_htmx_poll_after_sign_out_redirects_the_page(client, demo_site) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/recording/status/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    assert r["HX-Redirect"].startswith("/accounts/login/")
