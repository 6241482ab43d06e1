"""The desk's alert page in real headless Chromium against a real `vigil serve`: a tamper
alert raised by another process appears without reloading, is acknowledged from the
list, shows its snapshots, and is resolved with a note."""

from __future__ import annotations

import pytest

from conftest import browser_login, run_vigil

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RAISE = """
import numpy as np
from vigil.alerts.services import raise_alert
from vigil.school.models import Camera
from vigil.vision.imageops import encode_jpeg
cam = Camera.objects.get(code="CAM-012")
a, new = raise_alert(cause="tamper_covered", severity="critical", title="CAM-012: covered",
    camera=cam, audience=("security_guard", "department_head"),
    snapshot_before=encode_jpeg(np.full((90, 160), 140, np.uint8)),
    snapshot_after=encode_jpeg(np.full((90, 160), 40, np.uint8)))
print(a.pk)
"""


def test_alert_appears_live_is_acknowledged_and_resolved(page, demo_server) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, demo_server, "baove")
    page.goto(demo_server.url + "/alerts/")
    assert page.locator("tr[data-cause=tamper_covered]").count() == 0
    out = run_vigil(["manage", "shell", "-c", RAISE], demo_server.data_dir, check=True)
    pk = out.stdout.strip().splitlines()[-1]
    row = page.locator(f"tr[data-alert='{pk}']")
    row.wait_for(timeout=15000)  # htmx refresh, no reload
    assert page.locator("[data-testid='navbadge-alerts:list'] .badge").inner_text().strip() != ""
    row.locator("button").click()
    page.wait_for_load_state()
    assert "state-acknowledged" in (
        page.locator(f"tr[data-alert='{pk}']").get_attribute("class") or ""
    )
    page.goto(f"{demo_server.url}/alerts/{pk}/")
    for which in ("before", "after"):
        img = page.locator(f"[data-testid=snapshot-{which}]")
        img.wait_for()
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10000
        )
    page.fill("textarea[name=note]", "Áo khoác treo che camera, đã gỡ")
    page.click("[data-testid=resolve]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=alert-state]").inner_text().strip() == "Đã xử lý"
    history = page.locator("[data-testid=alert-history]").inner_text()
    assert "alert.acknowledge" in history and "alert.resolve" in history
