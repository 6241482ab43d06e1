"""Live wall and playback benchmark: what the security desk costs the server.

Sets up the demo school (86 cameras) on the camera simulator with recorded footage, runs
a real ``vigil serve`` and headless Chromium, and for each repeat measures over
``--seconds`` (after a warm-up):

1. **wall**: a 16-tile wall of H.264 sub-streams (640x360, 10 fps; CAM-003 is the
   simulator's clock) in one browser page: CPU of the ``vigil serve`` process
   (utime+stime from /proc, as % of one core), bandwidth to the browser (bytes the
   page's players received) and from the cameras (RTSP bytes the relays received), and
   the camera-to-screen latency read from the clock camera's time code (p50/p90);
2. **playback**: four simultaneous playbacks (four pages, one recorded 1080p H.264
   camera each): server CPU and bandwidth;
3. **recording**: the media engine's recorder (``python -m vigil.media.record``, the
   ``Recorder``) on the main streams of the same 16 cameras: its CPU;
4. **transcode**: one full view of an H.265 camera (1080p -> 720p H.264, ffmpeg): CPU of
   the server including its ffmpeg child, and the CPU seconds a recorded H.265 segment
   (10 s) costs to transcode for playback.

Prints medians over the repeats. Target: the 16-tile wall <= 10 % of one core.

    /work/main/.venv/bin/python benchmarks/live.py --seconds 30 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conftest import VigilServer, browser_login, run_vigil  # noqa: E402
from vigil.live.tests.latency import measure as measure_latency  # noqa: E402
from vigil.live.tests.latency import percentile  # noqa: E402
from vigil.media.simulator import Simulator  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHROMIUM = "/usr/bin/chromium"
TOML = "[live]\nlinger_seconds = 1\nmax_transcodes = 2\n"


def proc_cpu(pid: int, *, children: bool = True) -> float:
    """utime+stime (+ children's, and running children's) of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == pid:
                ticks += int(st[11]) + int(st[12])
    return ticks / CLK_TCK


def window(pid: int, seconds: float, sample: Callable[[], float]) -> tuple[float, float]:
    """(% of one core used by ``pid``, change of ``sample()``) over ``seconds``."""
    c0, s0, t0 = proc_cpu(pid), sample(), time.monotonic()
    time.sleep(seconds)
    c1, s1, t1 = proc_cpu(pid), sample(), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0), (s1 - s0) / (t1 - t0)


def relays(page: Any) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate("() => fetch('/api/live/relays').then(r => r.json())")
    return data


def wall(server: VigilServer, browser: Any, seconds: float, warmup: float) -> dict[str, float]:
    ctx = browser.new_context()
    page = ctx.new_page()
    browser_login(page, server, "baove")
    page.goto(server.url + "/live/?layout=16")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tile video'))"
        ".every(v => v.readyState >= 2 && v.currentTime > 0.5)",
        timeout=60000,
    )
    time.sleep(warmup)
    assert server.proc is not None
    received = lambda: float(page.evaluate("() => window.vigilWall.feed.session.bytes"))  # noqa: E731
    rtsp0 = sum(s["bytes_in"] for s in relays(page)["sources"])
    t0 = time.monotonic()
    cpu, rate = window(server.proc.pid, seconds, received)
    rtsp1 = sum(s["bytes_in"] for s in relays(page)["sources"])
    ingress = (rtsp1 - rtsp0) / (time.monotonic() - t0)
    lat = measure_latency(page, '.tile[data-camera="CAM-003"] video', min(10.0, seconds))
    samples = sorted(lat["samples"])
    ctx.close()
    return {
        "cpu_pct": cpu,
        "to_browser_mbit": rate * 8 / 1e6,
        "from_cameras_mbit": ingress * 8 / 1e6,
        "latency_p50_ms": percentile(samples, 50),
        "latency_p90_ms": percentile(samples, 90),
        "latency_frames": len(samples),
    }


def playback(
    server: VigilServer, browser: Any, seconds: float, warmup: float, base: float
) -> dict[str, float]:
    from datetime import UTC, datetime
    from urllib.parse import quote

    def iso(ts: float) -> str:
        return quote(datetime.fromtimestamp(ts, UTC).isoformat())

    ctx = browser.new_context()
    first = ctx.new_page()
    browser_login(first, server, "baove")
    pages = [first] + [ctx.new_page() for _ in range(3)]
    for page, code in zip(pages, ["CAM-004", "CAM-005", "CAM-006", "CAM-007"], strict=True):
        page.goto(
            f"{server.url}/live/playback/?camera={code}&start={iso(base - 5)}&end={iso(base + 160)}"
        )
    for page in pages:
        page.wait_for_function(
            "() => window.vigilPlayback && window.vigilPlayback.players[0].video.currentTime > 0",
            timeout=60000,
        )
    time.sleep(warmup)
    assert server.proc is not None
    got = lambda: float(  # noqa: E731
        sum(p.evaluate("() => window.vigilPlayback.players[0].mse.bytes") for p in pages)
    )
    cpu, rate = window(server.proc.pid, seconds, got)
    ctx.close()
    return {"cpu_pct": cpu, "to_browser_mbit": rate * 8 / 1e6}


def recording(sim: Simulator, codes: list[str], seconds: float, warmup: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-rec-") as tmp:
        cams = Path(tmp) / "cams.json"
        cams.write_text(json.dumps([{"code": c, "url": sim.url(c)} for c in codes]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.media.record", "--volume", str(Path(tmp) / "vol"),
             "--cameras-json", str(cams)],
            cwd=ROOT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(warmup)
            cpu, _ = window(proc.pid, seconds, lambda: 0.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return {"cpu_pct": cpu}


def transcode(server: VigilServer, browser: Any, seconds: float, warmup: float) -> dict[str, float]:
    ctx = browser.new_context()
    page = ctx.new_page()
    browser_login(page, server, "baove")
    page.goto(server.url + "/live/?layout=1")  # CAM-001 sub-stream tile, then its main
    page.click('.tile[data-camera="CAM-001"]')
    page.wait_for_function(
        "() => document.getElementById('fullview').dataset.mode === 'transcode' && "
        "document.querySelector('#fullview video').currentTime > 0.5",
        timeout=60000,
    )
    time.sleep(warmup)
    assert server.proc is not None
    cpu, _ = window(server.proc.pid, seconds, lambda: 0.0)
    ctx.close()
    return {"cpu_pct_with_ffmpeg": cpu}


def segment_transcode(server: VigilServer, browser: Any, base: float) -> dict[str, float]:
    from datetime import UTC, datetime
    from urllib.parse import quote

    ctx = browser.new_context()
    page = ctx.new_page()
    browser_login(page, server, "baove")
    start = quote(datetime.fromtimestamp(base - 5, UTC).isoformat())
    end = quote(datetime.fromtimestamp(base + 160, UTC).isoformat())
    page.goto(f"{server.url}/live/playback/?camera=CAM-001&start={start}&end={end}")
    page.wait_for_function(
        "() => window.vigilPlayback && window.vigilPlayback.players[0].video.currentTime > 25",
        timeout=90000,
    )
    stats = relays(page)["playback_transcodes"]
    ctx.close()
    return {
        "segments": stats["segments"],
        "cpu_s_per_segment": stats["cpu_seconds"] / max(1, stats["segments"]),
    }


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, list[dict[str, float]]] = {
        "wall": [],
        "playback": [],
        "recording": [],
        "transcode": [],
        "segment": [],
    }
    with tempfile.TemporaryDirectory(prefix="vigil-bench-live-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        run_vigil(["init", "--demo"], data, check=True)
        (data / "vigil.toml").write_text(TOML, encoding="utf-8")
        sim = Simulator.standard(86, prefix="CAM-0", h265=2)
        sim.start()
        server = None
        try:
            env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
            env.pop("DJANGO_SETTINGS_MODULE", None)
            out = subprocess.run(
                [sys.executable, "-m", "vigil.live.tests.site", "--port", str(sim.port),
                 "--clock", "CAM-003", "--footage"],
                capture_output=True, text=True, env=env, cwd=ROOT, check=True,
            )  # fmt: skip
            base = float(json.loads(out.stdout.strip().splitlines()[-1])["base"])
            server = VigilServer(data).start()
            wall_codes = [f"CAM-{i:03d}" for i in range(1, 17) if i != 3]
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--mute-audio",
                          "--autoplay-policy=no-user-gesture-required"],
                )  # fmt: skip
                for i in range(args.repeats):
                    print(f"repeat {i + 1}/{args.repeats}", flush=True)
                    results["wall"].append(wall(server, browser, args.seconds, args.warmup))
                    time.sleep(2)  # relays linger 1 s
                    results["playback"].append(
                        playback(server, browser, args.seconds, args.warmup, base)
                    )
                    results["recording"].append(
                        recording(sim, wall_codes, args.seconds, args.warmup)
                    )
                    time.sleep(2)
                    results["transcode"].append(
                        transcode(server, browser, min(args.seconds, 20), args.warmup)
                    )
                    time.sleep(2)
                    if i == 0:
                        results["segment"].append(segment_transcode(server, browser, base))
                    for name in ("wall", "playback", "recording", "transcode"):
                        print(f"  {name}: {results[name][-1]}", flush=True)
                browser.close()
        finally:
            if server is not None:
                server.stop()
            sim.stop()
    w, pb, rec, tc = (results[k] for k in ("wall", "playback", "recording", "transcode"))
    seg = results["segment"][0]
    print()
    print(f"medians over {args.repeats} repeats of {args.seconds:g} s (2-core machine)")
    print(f"{'scenario':<44} {'server CPU':>11} {'to browser':>12}")
    print(
        f"{'16-tile wall, H.264 sub-streams':<44} {median(w, 'cpu_pct'):>9.1f} % "
        f"{median(w, 'to_browser_mbit'):>7.2f} Mb/s"
    )
    print(
        f"{'4 playbacks, recorded 1080p H.264':<44} {median(pb, 'cpu_pct'):>9.1f} % "
        f"{median(pb, 'to_browser_mbit'):>7.2f} Mb/s"
    )
    print(f"{'recording the same 16 cameras (main, 1080p)':<44} {median(rec, 'cpu_pct'):>9.1f} %")
    print(
        f"{'1 live transcode H.265 1080p -> 720p (+wall 1)':<44} "
        f"{median(tc, 'cpu_pct_with_ffmpeg'):>9.1f} %"
    )
    print(f"camera bandwidth into the relays (wall): {median(w, 'from_cameras_mbit'):.2f} Mb/s")
    print(
        f"latency camera->screen: p50 {median(w, 'latency_p50_ms'):.0f} ms, "
        f"p90 {median(w, 'latency_p90_ms'):.0f} ms "
        f"({int(median(w, 'latency_frames'))} frames per repeat)"
    )
    print(
        f"playback transcode of a 10 s H.265 1080p segment: "
        f"{seg['cpu_s_per_segment']:.2f} CPU s ({seg['segments']:.0f} segments)"
    )
    ratio = median(w, "cpu_pct") / max(0.01, median(rec, "cpu_pct"))
    print(f"wall / recording CPU: {ratio:.2f}")
    target = median(w, "cpu_pct") <= 10.0
    print(f"target (16-tile wall <= 10 % of a core): {'met' if target else 'NOT met'}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"live-{int(time.time())}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
