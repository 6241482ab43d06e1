import time

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from vigil.accounts.models import User
from vigil.audit.models import AuditEntry
from vigil.core.middleware import AUTH_AT_KEY

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"


@pytest.fixture
def accounts(users):  # type: ignore[no-untyped-def]
    for u in users.values():
        u.set_password(PASSWORD)
        u.save()
    return users


def _code(username: str, offset: int = 0) -> str:
    device = TOTPDevice.objects.get(user__username=username)
    return f"{totp(device.bin_key, device.step, device.t0 - offset * device.step, device.digits, device.drift):06d}"


def test_passwords_are_argon2id(accounts) -> None:  # type: ignore[no-untyped-def]
    encoded = User.objects.get(username="baove").password
    assert encoded.startswith("argon2$argon2id$")
    assert "m=19456,t=2,p=1" in encoded


def test_guard_signs_in_with_password_only(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    r = c.post("/accounts/login/", {"username": "baove", "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/"
    assert c.get("/").status_code == 200
    assert AuditEntry.objects.filter(
        action="auth.login", outcome="success", actor_username="baove"
    ).exists()


def test_principal_needs_the_totp_code(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    r = c.post("/accounts/login/", {"username": "hieutruong", "password": PASSWORD})
    assert r["Location"] == "/accounts/login/verify/"
    # Not signed in yet: the dashboard still sends to the login page.
    assert c.get("/")["Location"].startswith("/accounts/login/")
    r = c.post(
        "/accounts/login/verify/",
        {"code": "000000" if _code("hieutruong") != "000000" else "111111"},
    )
    page = r.content.decode()
    assert r.status_code == 200 and ("not correct" in page or "không đúng" in page)
    time.sleep(1.1)  # django-otp throttles the device for a second after a failure
    r = c.post("/accounts/login/verify/", {"code": _code("hieutruong")})
    assert r.status_code == 302 and r["Location"] == "/"
    assert c.get("/").status_code == 200


def test_totp_codes_are_single_use(accounts) -> None:  # type: ignore[no-untyped-def]
    code = _code("admin")
    c1 = Client()
    c1.post("/accounts/login/", {"username": "admin", "password": PASSWORD})
    assert c1.post("/accounts/login/verify/", {"code": code}).status_code == 302
    c2 = Client()
    c2.post("/accounts/login/", {"username": "admin", "password": PASSWORD})
    r = c2.post("/accounts/login/verify/", {"code": code})
    assert r.status_code == 200  # replayed code refused


def test_new_two_factor_user_must_enrol(accounts) -> None:  # type: ignore[no-untyped-def]
    TOTPDevice.objects.filter(user__username="totruongbv").delete()
    c = Client()
    r = c.post("/accounts/login/", {"username": "totruongbv", "password": PASSWORD})
    assert r["Location"] == "/accounts/login/enrol/"
    page = c.get("/accounts/login/enrol/").content.decode()
    assert "<svg" in page
    device = TOTPDevice.objects.get(user__username="totruongbv", confirmed=False)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    r = c.post("/accounts/login/enrol/", {"code": code})
    assert r.status_code == 302
    assert TOTPDevice.objects.get(user__username="totruongbv").confirmed


def test_lockout_after_repeated_failures(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    for _ in range(5):
        r = c.post("/accounts/login/", {"username": "baove", "password": "wrong-password"})
    # The fifth failure locks; even the right password is refused now.
    r = c.post("/accounts/login/", {"username": "baove", "password": PASSWORD})
    assert r.status_code == 429
    assert "Too many failed" in r.content.decode() or "Đăng nhập sai" in r.content.decode()
    # Another account is not affected.
    r = Client().post("/accounts/login/", {"username": "ketoan", "password": PASSWORD})
    assert r.status_code == 302
    assert AuditEntry.objects.filter(action="auth.login", outcome="failure").count() >= 4


def test_wrong_totp_codes_count_towards_lockout(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.post("/accounts/login/", {"username": "admin", "password": PASSWORD})
    wrong = "123456" if _code("admin") != "123456" else "654321"
    statuses = [c.post("/accounts/login/verify/", {"code": wrong}).status_code for _ in range(5)]
    assert statuses[-1] == 429


def test_absolute_session_expiry(accounts, settings) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.post("/accounts/login/", {"username": "baove", "password": PASSWORD})
    assert c.get("/").status_code == 200
    session = c.session
    session[AUTH_AT_KEY] = time.time() - settings.VIGIL_ABSOLUTE_SESSION_SECONDS - 5
    session.save()
    r = c.get("/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_idle_expiry_is_the_cookie_age(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_session_id_changes_at_sign_in(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.get("/accounts/login/")
    c.cookies["vigil_session"] = "attacker-chosen"
    c.post("/accounts/login/", {"username": "baove", "password": PASSWORD})
    assert c.cookies["vigil_session"].value != "attacker-chosen"


def test_logout_is_post_only_and_audited(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.post("/accounts/login/", {"username": "baove", "password": PASSWORD})
    assert c.get("/accounts/logout/").status_code == 405
    c.post("/accounts/logout/")
    assert AuditEntry.objects.filter(action="auth.logout", actor_username="baove").exists()
    assert c.get("/").status_code == 302


def test_open_redirect_is_refused(accounts) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    r = c.post(
        "/accounts/login/?next=https://evil.example/", {"username": "baove", "password": PASSWORD}
    )
    assert r["Location"] == "/"
