"""Shared fixtures: the real footage, a demo site in the test database, signed-in clients,
and fresh data directories for tests that run Vigil as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vigil.media.simulator.fixtures import footage_dir

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def footage() -> Path:
    path = footage_dir()
    if not (path / "one-by-one-person-detection.mp4").exists():
        pytest.skip(f"real sample footage not found in {path} (set VIGIL_FOOTAGE_DIR)")
    return path


@pytest.fixture
def demo_site(db):  # type: ignore[no-untyped-def]
    """The demo school (86 cameras, one user per role) in the test database."""
    from vigil.core.demo import seed

    return seed()


@pytest.fixture
def users(demo_site):  # type: ignore[no-untyped-def]
    from vigil.accounts.models import User

    return {u.username: u for u in User.objects.all()}


@pytest.fixture
def login(client, users):  # type: ignore[no-untyped-def]
    """Sign a test client in as a demo user, passing two-factor where the role needs it."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from vigil.core.middleware import AUTH_AT_KEY

    def _login(username: str, c=None):  # type: ignore[no-untyped-def]
        import time

        c = c or client
        user = users[username]
        c.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        session = c.session
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is not None:
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session[AUTH_AT_KEY] = time.time()
        session.save()
        return c

    return _login


def run_vigil(
    args: list[str], data_dir: Path, check: bool = False, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the real `vigil` command in a subprocess against its own data directory."""
    environment = {**os.environ, "VIGIL_DATA_DIR": str(data_dir), **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"vigil {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory initialised once per session with `vigil init --demo`."""
    path = tmp_path_factory.mktemp("demo-data")
    run_vigil(["init", "--demo"], path, check=True)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VigilServer:
    """A real `vigil serve` process on a free port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"serve-{self.port}.log"

    def start(self, timeout: float = 30) -> VigilServer:
        import time
        import urllib.request

        env = {**os.environ, "VIGIL_DATA_DIR": str(self.data_dir)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vigil.cli", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vigil serve exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"vigil serve did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def demo_server(demo_data_dir: Path):  # type: ignore[no-untyped-def]
    server = VigilServer(demo_data_dir).start()
    yield server
    server.stop()


def demo_credentials(data_dir: Path) -> dict[str, dict[str, str]]:
    """username -> {password, totp} from the demo's credentials file."""
    creds: dict[str, dict[str, str]] = {}
    last = ""
    for line in (data_dir / "demo-credentials.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if "TOTP secret:" in line:
            creds[last]["totp"] = line.split("TOTP secret:")[1].strip()
            continue
        parts = line.split()
        last = parts[0]
        creds[last] = {"password": parts[1]}
    return creds


_TOTP_STEP = 30
_last_totp_step: dict[tuple[str, str], int] = {}


def totp_now(secret_b32: str, *, once_per: tuple[str, str] | None = None) -> str:
    """The current code. With `once_per` (server data dir, username), wait for the next
    time step when this login already used the current one: the server refuses a
    replayed code, as it should, so two sign-ins in one 30 s window need two steps."""
    import base64

    from django_otp.oath import TOTP

    now = time.time()
    if once_per is not None:
        step = int(now // _TOTP_STEP)
        if _last_totp_step.get(once_per) == step:
            time.sleep((step + 1) * _TOTP_STEP - now + 0.2)
            now = time.time()
        _last_totp_step[once_per] = int(now // _TOTP_STEP)
    generator = TOTP(base64.b32decode(secret_b32), step=_TOTP_STEP)
    generator.time = int(now)
    return f"{generator.token():06d}"


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Chromium for one test module. Module scope: Playwright's sync API keeps an event
    loop running on this thread while it is open, which asyncio.run() elsewhere refuses."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (./run.sh test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    pg = context.new_page()
    yield pg
    context.close()


def browser_login(page, server: VigilServer, username: str) -> None:  # type: ignore[no-untyped-def]
    creds = demo_credentials(server.data_dir)[username]
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", creds["password"])
    page.click("[data-testid=login-submit]")
    if "totp" in creds:
        page.wait_for_url("**/accounts/login/verify/")
        page.fill(
            "input[name=code]",
            totp_now(creds["totp"], once_per=(str(server.data_dir), username)),
        )
        page.click("[data-testid=otp-submit]")
    page.wait_for_url(server.url + "/")
