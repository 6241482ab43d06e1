"""The live relay against the real camera simulator: one RTSP connection per stream shared
by every viewer, late joiners start at once, slow viewers skip to a keyframe, the
relay survives a camera restart with increasing decode times and stops after its linger
time; H.265 is transcoded with a cap."""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.live.relay import (
    MSG_MEDIA,
    MSG_META,
    Attachment,
    RelayHub,
    RtspSource,
    Sink,
    StreamTarget,
    TranscodeLimit,
)
from vigil.live.tests.conftest import require_footage
from vigil.live.transcode import TranscodeSource
from vigil.media.simulator import Simulator, gst_available

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    require_footage()
    if not gst_available():
        pytest.skip("GStreamer RTSP server not available")
    with Simulator.standard(3, prefix="RLY", h265=1) as s:
        yield s


def messages(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    pos = 0
    while pos + 6 <= len(data):
        kind, channel, size = struct.unpack_from(">BBI", data, pos)
        out.append((kind, channel, data[pos + 6 : pos + 6 + size]))
        pos += 6 + size
    assert pos == len(data)
    return out


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    """Top-level (type, tfdt of the video traf or -1) of an fMP4 byte string."""
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        tfdt = -1
        if kind == b"moof":
            i = data.find(b"tfdt", pos, pos + size)
            if i > 0:
                tfdt = struct.unpack_from(">Q", data, i + 8)[0]
        out.append((kind, tfdt))
        pos += size
    return out


async def collect(sink: Sink, seconds: float) -> bytes:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    parts = []
    while loop.time() < end:
        parts.append(await sink.take(0.2))
    return b"".join(parts)


def frames_in(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(json.loads(out.stdout)["streams"][0]["nb_read_frames"])


def test_viewers_share_one_connection_and_late_joiners_start_at_once(
    sim: Simulator, tmp_path: Path
) -> None:
    async def run() -> dict[str, Any]:
        hub = RelayHub()
        hub.configure(linger=0.5, max_transcodes=0)
        key = ("RLY02", "sub")
        target = StreamTarget(sim.url("RLY02", "sub"))
        a = hub.acquire(key, lambda: RtspSource(key, target))
        sink_a = Sink()
        a.attach(Attachment(sink_a, 0))
        first = await collect(sink_a, 3.0)
        b = hub.acquire(key, lambda: RtspSource(key, target))
        sink_b = Sink()
        b.attach(Attachment(sink_b, 5))
        joined = await sink_b.take(0.0)  # synchronously on attach: meta, init, GOP
        later = await collect(sink_b, 1.0)
        result = {
            "same": a is b,
            "sources": len(hub.sources),
            "first": first,
            "joined": joined,
            "later": later,
            "users": a.users,
        }
        hub.release(a)
        hub.release(b)
        await asyncio.sleep(1.5)
        result["after"] = len(hub.sources)
        return result

    r = asyncio.run(run())
    assert r["same"] and r["sources"] == 1 and r["users"] == 2
    assert r["after"] == 0  # stopped after the linger time
    msgs = messages(r["first"])
    meta = [json.loads(p) for k, _c, p in msgs if k == MSG_META]
    assert any(m.get("codec", "").startswith("avc1.") and m["width"] == 640 for m in meta)
    media = b"".join(p for k, _c, p in msgs if k == MSG_MEDIA)
    kinds = boxes(media)
    assert kinds[0][0] == b"ftyp" and kinds[1][0] == b"moov"
    tfdts = [t for k, t in kinds if k == b"moof"]
    assert len(tfdts) >= 20 and tfdts == sorted(tfdts)  # ~10 fps, increasing
    (tmp_path / "a.mp4").write_bytes(media)
    assert frames_in(tmp_path / "a.mp4") == len(tfdts)  # every fragment decodes
    joined = messages(r["joined"])
    assert {c for _k, c, _p in joined} == {5}
    jmedia = b"".join(p for k, _c, p in joined if k == MSG_MEDIA)
    assert boxes(jmedia)[0][0] == b"ftyp"  # init, then the GOP, without waiting
    assert sum(1 for k, _t in boxes(jmedia) if k == b"moof") >= 1
    (tmp_path / "b.mp4").write_bytes(
        jmedia + b"".join(p for k, _c, p in messages(r["later"]) if k == MSG_MEDIA)
    )
    assert frames_in(tmp_path / "b.mp4") >= 10  # decodable from the first byte


def test_a_slow_viewer_skips_to_the_next_keyframe(sim: Simulator) -> None:
    async def run() -> tuple[int, int, bool]:
        hub = RelayHub()
        key = ("RLY03", "main")
        src = hub.acquire(key, lambda: RtspSource(key, StreamTarget(sim.url("RLY03", "main"))))
        sink = Sink(max_backlog=200_000)  # ~1 s of the 2 Mbit/s main stream
        att = Attachment(sink, 0)
        src.attach(att)
        peak = 0
        skipped = False
        for _ in range(40):  # never drained for 4 s
            await asyncio.sleep(0.1)
            peak = max(peak, sink.backlog)
            skipped = skipped or att.need_key
        data = await sink.take(0)
        hub.release(src)
        src.stop()
        await src.wait_stopped()
        return peak, len(data), skipped

    peak, size, skipped = asyncio.run(run())
    assert skipped  # fell behind, so it waits for a keyframe instead of buffering more
    assert peak < 200_000 + 400_000  # bounded: at most the limit plus one large frame or so
    assert size > 0


def test_the_relay_survives_a_camera_restart_with_increasing_decode_times(
    tmp_path: Path,
) -> None:
    require_footage()
    if not gst_available():
        pytest.skip("GStreamer RTSP server not available")

    async def run(sim: Simulator) -> tuple[list[str], list[int]]:
        key = ("RST01", "sub")
        src = RtspSource(key, StreamTarget(sim.url("RST01", "sub")), offline_after=30)
        src.start()
        sink = Sink()
        src.attach(Attachment(sink, 0))
        states: list[str] = []
        data = await collect(sink, 2.0)
        await asyncio.get_running_loop().run_in_executor(None, sim.stop)
        for _ in range(10):
            await asyncio.sleep(0.2)
            states.append(str(src.state))
        await asyncio.get_running_loop().run_in_executor(None, sim.start)
        data += await collect(sink, 6.0)
        states.append(str(src.state))
        src.stop()
        await src.wait_stopped()
        media = b"".join(p for k, _c, p in messages(data) if k == MSG_MEDIA)
        return states, [t for k, t in boxes(media) if k == b"moof"]

    sim = Simulator.standard(1, prefix="RST")
    sim.start()
    try:
        states, tfdts = asyncio.run(run(sim))
    finally:
        sim.stop()
    assert "reconnecting" in states and states[-1] == "live"
    assert all(b > a for a, b in itertools.pairwise(tfdts))  # one timeline
    gaps = [b - a for a, b in itertools.pairwise(tfdts)]
    assert max(gaps) > 90000 * 0.5  # the outage is a jump forward, not a restart at 0


def test_h265_is_transcoded_within_the_cap(sim: Simulator, tmp_path: Path) -> None:
    async def run() -> dict[str, Any]:
        hub = RelayHub()
        hub.configure(linger=5.0, max_transcodes=1)
        hub.transcode_factory = lambda base: TranscodeSource(base, height=360, max_fps=10)
        key = ("RLY01", "main")
        base = hub.acquire(key, lambda: RtspSource(key, StreamTarget(sim.url("RLY01", "main"))))
        codec = await asyncio.wait_for(base.wait_codec(), 10)
        tc = hub.acquire_transcode(base)
        sink = Sink()
        tc.attach(Attachment(sink, 0))
        data = await collect(sink, 4.0)
        other_key = ("RLY02", "main")
        other = hub.acquire(
            other_key, lambda: RtspSource(other_key, StreamTarget(sim.url("RLY02", "main")))
        )
        refused = None
        try:
            hub.acquire_transcode(other)
        except TranscodeLimit as exc:
            refused = (exc.in_use, exc.limit)
        # Once nobody watches the first transcode, its lingering slot is given away.
        hub.release(tc)
        given = hub.acquire_transcode(other)
        await tc.wait_stopped()
        result = {
            "base_users": base.users,  # the stopped transcoder gave back its hold on it
            "codec": codec,
            "data": data,
            "refused": refused,
            "given": given.key,
            "pid": getattr(tc, "pid", None),
        }
        await hub.shutdown()
        return result

    r = asyncio.run(run())
    assert r["codec"] == "h265"
    msgs = messages(r["data"])
    meta = [json.loads(p) for k, _c, p in msgs if k == MSG_META]
    assert any(m.get("codec", "").startswith("avc1.") and m["height"] == 360 for m in meta)
    media = b"".join(p for k, _c, p in msgs if k == MSG_MEDIA)
    (tmp_path / "t.mp4").write_bytes(media)
    assert frames_in(tmp_path / "t.mp4") >= 20
    assert r["refused"] == (1, 1)
    assert r["base_users"] == 1
    assert r["given"] == ("RLY02", "main", "transcode")
