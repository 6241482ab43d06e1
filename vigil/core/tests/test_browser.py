"""The web shell in real headless Chromium against a real `vigil serve`."""

import pytest
from playwright.sync_api import expect

from conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_login_with_two_factor_switch_language_and_list_86_cameras(page, demo_server) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, demo_server, "admin")  # IT staff: password + TOTP
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("text=Đăng xuất").count() == 1
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("text=Sign out").count() == 1
    page.click("nav.mainnav >> text=Cameras")
    page.wait_for_url("**/site/cameras/")
    assert page.locator("[data-testid=camera-table] tbody tr").count() == 86
    assert "86 cameras" in page.inner_text("[data-testid=camera-count]")
    # Filtering by area with htmx narrows the table without a page load.
    page.select_option("select[name=area]", "CONG-CHINH")
    expect(page.locator("[data-testid=camera-table] tbody tr")).to_have_count(4)
    page.click("[data-testid=lang-vi]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "vi"


def test_wrong_password_is_refused_in_the_browser(page, demo_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo_server.url + "/accounts/login/")
    page.fill("input[name=username]", "ketoan")
    page.fill("input[name=password]", "not-the-password")
    page.click("[data-testid=login-submit]")
    assert page.locator(".errorlist").count() == 1
    assert page.url.endswith("/accounts/login/")
