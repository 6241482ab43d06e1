"""``vigil serve`` stops on SIGTERM even while live streams are open (they never end by
themselves): uvicorn closes them after a short grace period."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import VigilServer, demo_credentials, run_vigil

pytestmark = pytest.mark.slow


def test_sigterm_ends_open_live_streams(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    run_vigil(["init", "--demo"], data, check=True)
    server = VigilServer(data).start()
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(server.url + "/accounts/login/").read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert csrf is not None
        password = demo_credentials(data)["baove"]["password"]
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": csrf.group(1), "username": "baove", "password": password}
        ).encode()
        login = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            server.url + "/accounts/login/", data=body, headers={"Referer": server.url + "/"}
        )
        opener.open(login)
        cookies = {c.name: c.value for c in jar}
        assert "vigil_session" in cookies
        api = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            server.url + "/api/live/sessions",
            data=json.dumps({"cameras": ["CAM-010"], "stream": "sub"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": cookies["vigil_csrftoken"],
                     "Referer": server.url + "/"},
        )  # fmt: skip
        url = json.loads(opener.open(api).read())["url"]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        header = "; ".join(f"{k}={v}" for k, v in cookies.items())
        conn.request("GET", url, headers={"Cookie": header})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read1(6)  # the stream is open (meta "connecting" comes first)
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=15)
        assert time.monotonic() - started < 10
        conn.close()
    finally:
        server.stop()
