"""Retention pages in real headless Chromium against a real `vigil serve` of the demo."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _context(browser):  # type: ignore[no-untyped-def]
    return browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")


def test_board_member_sees_three_recorders_with_projected_days(page, demo_server) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, demo_server, "phohieutruong")
    page.goto(demo_server.url + "/retention/storage/")
    rows = page.locator("[data-testid=plan-recorders] tbody tr")
    assert rows.count() == 3
    for code in ("NVR-01", "NVR-02", "NVR-03"):
        days = page.locator(f"tr[data-recorder={code}] [data-testid=projected-days]").inner_text()
        assert re.fullmatch(r"\d+\.\d|∞", days.strip()), days
    # The demo's disk is smaller than 30 TB: the page says so and also shows the declared
    # projection; with the declared sizes, Art. 5's 12 + 12 + 6 TB hold the floor.
    page.check("input[name=declared]")
    page.click("[data-testid=plan-submit]")
    page.wait_for_url("**declared=on**")
    declared = {
        code: float(
            page.locator(f"tr[data-recorder={code}] [data-testid=projected-days]").inner_text()
        )
        for code in ("NVR-01", "NVR-02", "NVR-03")
    }
    assert declared == {"NVR-01": 20.6, "NVR-02": 23.0, "NVR-03": 21.7}
    assert "msg-success" in (page.get_attribute("[data-testid=plan-verdict]", "class") or "")
    # What if a 1080p camera joins the 6 TB recorder?
    page.fill("textarea[name=add]", "NVR-03:4096")
    page.click("[data-testid=plan-submit]")
    page.wait_for_load_state()
    assert "msg-error" in (page.get_attribute("[data-testid=plan-verdict]", "class") or "")
    assert page.locator("tr[data-recorder=NVR-03] .badge.bad").count() == 1
    moves = page.locator("[data-testid=plan-moves] li")
    assert moves.count() == 1 and moves.inner_text() == "+1: NVR-03 → NVR-02"


def test_hold_placed_by_security_head_refused_to_guard_released_by_principal(
    browser, demo_server
) -> None:  # type: ignore[no-untyped-def]
    reason = "Phụ huynh lớp C2 khiếu nại ngày 12/3"
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    # The security head places the hold.
    ctx = _context(browser)
    head = ctx.new_page()
    browser_login(head, demo_server, "totruongbv")
    head.goto(demo_server.url + "/retention/holds/")
    head.select_option("select[name=cameras]", ["CAM-012", "CAM-013"])
    head.fill("input[name=start]", (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    head.fill("input[name=end]", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    head.fill("textarea[name=reason]", reason)
    head.fill("input[name=source]", "BB-12-03")
    head.click("[data-testid=hold-submit]")
    head.wait_for_url("**/retention/holds/")
    row = head.locator("[data-testid=active-holds] tr", has_text=reason)
    assert row.count() == 1
    assert "CAM-012" in row.inner_text() and "CAM-013" in row.inner_text()
    hold_id = row.get_attribute("data-hold")
    # Placing is allowed to the security head, releasing is not: no release button.
    assert row.locator("[data-testid=release-submit]").count() == 0
    ctx.close()

    # A guard cannot even open the holds page.
    ctx = _context(browser)
    guard = ctx.new_page()
    browser_login(guard, demo_server, "baove")
    response = guard.goto(demo_server.url + "/retention/holds/")
    assert response is not None and response.status == 403
    assert guard.locator(f"tr[data-hold='{hold_id}']").count() == 0
    ctx.close()

    # The principal releases it, giving a reason and confirming.
    ctx = _context(browser)
    principal = ctx.new_page()
    browser_login(principal, demo_server, "hieutruong")
    principal.goto(demo_server.url + "/retention/holds/")
    row = principal.locator(f"[data-testid=active-holds] tr[data-hold='{hold_id}']")
    row.locator("input[name=reason]").fill("Đã lập biên bản, hồ sơ đã lưu")
    principal.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=release-submit]").click()
    principal.wait_for_load_state()
    assert principal.locator(f"[data-testid=active-holds] tr[data-hold='{hold_id}']").count() == 0
    released = principal.locator(f"[data-testid=released-holds] tr[data-hold='{hold_id}']")
    assert released.count() == 1 and "hieutruong" in released.inner_text()
    ctx.close()
