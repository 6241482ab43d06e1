"""One request from filing to a verified package, as each role does it, in real headless
Chromium against real processes: footage recorded by `vigil record` from the RTSP
simulator, `vigil serve`, `vigil export-worker`, and `vigil verify` on the download."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, VigilServer, browser_login, free_port, run_vigil

pytestmark = [
    pytest.mark.browser,
    pytest.mark.rtsp,
    pytest.mark.footage,
    pytest.mark.slow,
    # one worker records the footage and runs the servers for both tests (--dist loadgroup)
    pytest.mark.xdist_group("access-browser"),
]
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class Flow:
    server: VigilServer
    data: Path
    start: datetime  # UTC of the first recorded segment
    end: datetime


@pytest.fixture(scope="session")  # (not module: xdist may interleave another module's tests)
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    from conftest import footage_dir
    from vigil.media.simulator import gst_available
    from vigil.recording.tests.conftest import Site

    if not (footage_dir() / "one-by-one-person-detection.mp4").exists():
        pytest.skip("real sample footage not found")
    if not gst_available():
        pytest.skip("GStreamer RTSP server not available")
    data = tmp_path_factory.mktemp("site")
    run_vigil(["init", "--demo"], data, check=True)
    site = Site(data, free_port(), ["CAM-001"])
    site.sql(
        "UPDATE school_camera SET main_url = replace(main_url, ':8554/', ?), "
        "sub_url = replace(sub_url, ':8554/', ?)",
        (f":{site.port}/", f":{site.port}/"),
    )
    sim = site.simulator().start()
    try:
        rec = site.record()
        site.wait_for(lambda: len(site.segments("CAM-001")) >= 3, 90, "three segments")
        site.stop(rec)
    finally:
        sim.stop()
    (first, last) = site.sql(
        "SELECT min(s.start), max(s.end) FROM recording_segment s "
        "JOIN school_camera c ON c.id = s.camera_id WHERE c.code = 'CAM-001'"
    )[0]
    parse = lambda t: datetime.fromisoformat(str(t) + ("" if "+" in str(t) else "+00:00"))  # noqa: E731
    server = VigilServer(data).start()
    env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with (data / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "export-worker", "--idle", "0.3"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield Flow(server, data, parse(first), parse(last))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()


def _local(dt: datetime) -> str:
    return dt.astimezone(HCM).strftime("%Y-%m-%dT%H:%M:%S")


def _as(browser, flow: Flow, username: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", accept_downloads=True
    )
    page = context.new_page()
    browser_login(page, flow.server, username)
    return page


def _file(page, flow: Flow, start: datetime, end: datetime) -> str:  # type: ignore[no-untyped-def]
    page.goto(flow.server.url + "/requests/new/")
    page.select_option("select[name=kind]", "guardian")
    page.check("input[name=form][value=copy]")
    page.select_option("select[name=cameras]", ["CAM-001"])
    page.fill("input[name=start]", _local(start))
    page.fill("input[name=end]", _local(end))
    page.fill("input[name=subject]", "Bé Minh An, lớp C2")
    page.fill("textarea[name=purpose]", "Xem con tôi được đón lúc mấy giờ chiều hôm đó")
    page.click("[data-testid=request-submit]")
    page.wait_for_url(re.compile(r".*/requests/\d+/$"))
    return page.url


def _status(page) -> str:  # type: ignore[no-untyped-def]
    cls = page.get_attribute("[data-testid=status]", "class") or ""
    return cls.split("status-")[1].split()[0]


def test_a_parents_copy_from_filing_to_a_verified_package(browser, flow, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    start = flow.start + timedelta(seconds=1.5)
    end = flow.start + timedelta(seconds=4.3)  # redaction runs at ~2 frames/s per core
    # The parent files the request and sees it waiting, with the law's deadlines.
    parent = _as(browser, flow, "phuhuynh")
    url = _file(parent, flow, start, end)
    number = parent.inner_text("[data-testid=request-number]")
    assert _status(parent) == "submitted"
    expect(parent.locator("[data-testid=deadline-reply]")).to_be_visible()
    expect(parent.locator("[data-testid=deadline-access]")).to_be_visible()
    assert parent.locator("[data-testid=approve-form]").count() == 0

    # The principal approves first and sets the terms; a board member confirms.
    principal = _as(browser, flow, "hieutruong")
    principal.goto(url)
    expect(principal.locator("input[name=redact]")).to_be_checked()
    principal.select_option("select[name=extractor]", "admin")
    principal.click("[data-testid=approve-submit]")
    principal.wait_for_load_state()
    assert _status(principal) == "partly_approved"
    board = _as(browser, flow, "phohieutruong")
    board.goto(url)
    board.fill("input[name=note]", "Đồng ý, làm mờ khuôn mặt các trẻ khác")
    board.click("[data-testid=approve-submit]")
    board.wait_for_load_state()
    assert _status(board) == "approved"
    assert board.locator("[data-testid=grants] [data-grant]").count() == 2

    # IT extracts; the progress is visible while it runs, then the package is ready.
    it = _as(browser, flow, "admin")
    it.goto(url)
    it.click("[data-testid=export-submit]")
    it.wait_for_load_state()
    job = it.locator("[data-job]").first
    expect(job.locator("[data-testid=job-progress]")).to_be_visible()
    expect(job).to_have_attribute("data-state", "done", timeout=240_000)
    it.reload()
    expect(it.locator("[data-package]")).to_have_count(1)

    # The parent downloads it with a one-time link and checks it on the verify page.
    parent.goto(url)
    assert _status(parent) == "approved"
    parent.click("[data-testid=link-submit]")
    with parent.expect_download() as info:
        parent.click("[data-testid=download-link]")
    archive = tmp_path / info.value.suggested_filename
    info.value.save_as(archive)
    assert archive.name == f"{number}-E1.zip"
    parent.goto(flow.server.url + "/requests/verify/")
    parent.set_input_files("input[name=file]", str(archive))
    parent.click("[data-testid=verify-submit]")
    expect(parent.locator("[data-testid=verify-verdict]")).to_have_class(re.compile("msg-success"))

    # `vigil verify`: on the school's server, and on a computer that only has the file.
    on_site = run_vigil(["verify", str(archive)], flow.data)
    assert on_site.returncode == 0 and on_site.stdout.strip().endswith("valid"), on_site.stdout
    assert "this site's key" in on_site.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    offline = run_vigil(["verify", str(archive)], elsewhere)
    assert offline.returncode == 0 and offline.stdout.strip().endswith("valid")
    damaged = tmp_path / "damaged.zip"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 1
    damaged.write_bytes(bytes(raw))
    bad = run_vigil(["verify", str(damaged)], elsewhere)
    assert bad.returncode == 1 and "content altered" in bad.stdout

    # The download is in the chain of custody the principal sees.
    principal.goto(url)
    custody = principal.locator("[data-testid=custody] tr")
    expect(custody).to_have_count(2)
    assert "phuhuynh" in custody.nth(1).inner_text()

    # The principal revokes the parent's grant: the link button goes, a link made
    # before the revocation no longer works.
    parent.goto(url)
    parent.click("[data-testid=link-submit]")
    later = parent.get_attribute("[data-testid=download-link]", "href")
    principal.goto(url)
    row = principal.locator("[data-testid=grants] tr", has_text="footage.download")
    row.locator("input[name=reason]").fill("Phụ huynh đã nhận bản sao")
    row.locator("[data-testid=revoke-submit]").click()
    principal.wait_for_load_state()
    parent.goto(url)
    assert parent.locator("[data-testid=link-submit]").count() == 0
    assert later and later.startswith(flow.server.url)
    response = parent.request.get(later)
    assert response.status == 403


def test_a_refusal_reaches_the_parent_with_its_reason(browser, flow) -> None:  # type: ignore[no-untyped-def]
    parent = _as(browser, flow, "phuhuynh")
    url = _file(parent, flow, flow.start, flow.start + timedelta(seconds=3))
    principal = _as(browser, flow, "hieutruong")
    principal.goto(url)
    principal.fill("#refuse-reason", "Camera CAM-001 không quay lớp C2.")
    principal.click("[data-testid=refuse-submit]")
    principal.wait_for_load_state()
    assert _status(principal) == "refused"
    parent.goto(url)
    assert _status(parent) == "refused"
    assert "Camera CAM-001 không quay lớp C2." in parent.inner_text("[data-testid=refusal]")
