"""Recorded segments and the live muxer's stream play through MSE in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.media.clock import StreamClock
from vigil.media.fmp4 import LiveMuxer
from vigil.media.segment import SegmentWriter
from vigil.media.simulator.fixtures import Fixture
from vigil.media.tests.helpers import audio_frames, fixture_frames

pytestmark = [pytest.mark.browser, pytest.mark.footage, pytest.mark.slow]

PAGE = """<html><body><pre id=out>pending</pre><script>
async function test(file, mime, play) {
  const v = document.createElement('video'); v.muted = true; document.body.appendChild(v);
  const ms = new MediaSource(); v.src = URL.createObjectURL(ms);
  await new Promise(r => ms.addEventListener('sourceopen', r, {once: true}));
  if (!MediaSource.isTypeSupported(mime)) return file + ' unsupported';
  const sb = ms.addSourceBuffer(mime);
  let err = 'none';
  sb.onerror = () => err = 'append';
  v.onerror = () => err = 'media:' + (v.error && v.error.message);
  sb.appendBuffer(await (await fetch(file)).arrayBuffer());
  await new Promise(r => sb.addEventListener('updateend', r, {once: true}));
  const b = sb.buffered, ranges = [];
  for (let i = 0; i < b.length; i++) ranges.push(b.start(i).toFixed(2) + '-' + b.end(i).toFixed(2));
  if (play) { v.play().catch(e => err = String(e)); await new Promise(r => setTimeout(r, 1000)); }
  return `${file} ${ranges.join(',')} t=${v.currentTime.toFixed(2)} w=${v.videoWidth} err=${err}`;
}
(async () => {
  const out = document.getElementById('out'), res = [];
  for (const [f, m, p] of TESTS) { res.push(await test(f, m, p)); out.textContent = res.join(';'); }
  await fetch('/result', {method: 'POST', body: res.join(';')});
})();
</script></body></html>"""


RESULTS: list[str] = []
GOT_RESULT = threading.Event()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            RESULTS.append(body.decode(errors="replace"))
            GOT_RESULT.set()
            self.send_response(204)
            self.end_headers()

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, server.server_address[1]
    finally:
        server.shutdown()


def test_segments_and_live_stream_play_in_chromium(
    served: tuple[Path, int], main_h264: Fixture, sub_h264: Fixture, car_av: Fixture
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed")
    root, port = served
    mimes = {}
    for name, fx, audio in (("v", main_h264, False), ("av", car_av, True)):
        frames = fixture_frames(fx, 60)
        config = None
        if audio:
            config, af = audio_frames(fx)
            frames = sorted(frames + af, key=lambda f: f.ticks / (90000 if f.track == 0 else 48000))
        clock = StreamClock(90000, wall=lambda: 1_767_225_600.0, mono=lambda: 0.0)
        writer = SegmentWriter(root / "vol", "CAM01", clock=clock, audio=config, target_duration=60)
        for f in frames:
            writer.write(f)
        seg = writer.close()
        assert seg is not None
        done = seg.finish()
        shutil.copy(done.path, root / f"{name}.mp4")
        mimes[name] = f'video/mp4; codecs="{done.mime_codecs}"'
    mux = LiveMuxer()
    live = fixture_frames(sub_h264, 40)
    (root / "live.mp4").write_bytes(b"".join(c for c in (mux.push(f) for f in live) if c))
    assert mux.params is not None
    mimes["live"] = f'video/mp4; codecs="{mux.params.codec_string}"'
    # Audio does not advance in headless Chromium without an audio sink (an ffmpeg-made
    # A/V file behaves the same), so the A/V file is only appended and checked buffered.
    tests = ",".join(f"['{n}.mp4', '{m}', {str(n != 'av').lower()}]" for n, m in mimes.items())
    (root / "index.html").write_text(PAGE.replace("TESTS", f"[{tests}]"), encoding="utf-8")
    RESULTS.clear()
    GOT_RESULT.clear()
    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={root / 'profile'}",
         "--remote-debugging-port=0", f"http://127.0.0.1:{port}/index.html"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert GOT_RESULT.wait(60), "the page did not report its results"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = RESULTS[0]
    results = dict(line.split(" ", 1) for line in text.split(";"))
    assert set(results) == {"v.mp4", "av.mp4", "live.mp4"}, text
    assert results["v.mp4"].startswith("0.00-6.00 ")
    assert "w=1920 err=none" in results["v.mp4"]
    assert results["av.mp4"].startswith("0.00-4.80 ")  # audio + video buffered, no gap
    assert "err=none" in results["av.mp4"]
    assert results["live.mp4"].startswith("0.00-4.00 ")
    assert "w=640 err=none" in results["live.mp4"]
    for name in ("v.mp4", "live.mp4"):  # video-only streams really play (real time here)
        played = float(results[name].split("t=")[1].split()[0])
        assert played > 0.3, results[name]
