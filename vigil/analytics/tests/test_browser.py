"""The masks and zones editor on a camera's page, in real headless Chromium (static
script under the strict CSP): draw a mask and a zone, save, see them applied."""

from __future__ import annotations

import json

import pytest

from conftest import browser_login, run_vigil

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_draw_mask_and_zone_and_save(page, demo_server) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    browser_login(page, demo_server, "admin")
    page.goto(demo_server.url + "/site/cameras/CAM-040/")
    page.click("details.mask-editor summary")
    canvas = page.locator("[data-testid=mask-canvas]")

    def click(x: float, y: float) -> None:
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()  # again each time: the page may have scrolled
        assert box is not None
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])

    for x, y in ((0.05, 0.05), (0.3, 0.05), (0.3, 0.3)):
        click(x, y)
    page.click("[data-act=close]")
    page.select_option("[data-act=kind]", "zone")
    page.fill("[data-act=name]", "cửa")
    for x, y in ((0.6, 0.6), (0.95, 0.6), (0.95, 0.95), (0.6, 0.95)):
        click(x, y)
    page.click("[data-act=close]")
    page.fill("input[name=threshold]", "24")
    page.click("#analysis-settings button[type=submit]")
    page.wait_for_load_state()
    assert "1 vùng loại trừ" in page.locator("[data-testid=analysis-panel]").inner_text()
    out = run_vigil(
        ["manage", "shell", "-c",
         "from vigil.analytics.models import CameraAnalysis as A; import json;"
         "r = A.objects.get(camera__code='CAM-040'); print(json.dumps([r.masks, r.zones, r.threshold]))"],
        demo_server.data_dir, check=True,
    )  # fmt: skip
    masks, zones, threshold = json.loads(out.stdout.strip().splitlines()[-1])
    assert threshold == 24 and len(masks) == 1 and list(zones) == ["cửa"]
    assert abs(masks[0][1][0] - 0.3) < 0.02 and abs(zones["cửa"][2][1] - 0.95) < 0.02
    assert not [e for e in errors if "Content Security Policy" in e]
