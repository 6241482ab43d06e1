"""End-to-end recording from the real RTSP simulator (no mocks in the media path)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vigil.media.ingest import CameraIngest, CameraSpec, Gap, GapCause, IngestState, Recorder
from vigil.media.segment import FinishedSegment
from vigil.media.simulator import Simulator, free_port
from vigil.media.tests.conftest import require_gst
from vigil.media.tests.helpers import decode_frames, ffprobe

pytestmark = [pytest.mark.rtsp, pytest.mark.footage, pytest.mark.slow]


class Events:
    """Collects callbacks with the monotonic time they arrived."""

    def __init__(self) -> None:
        self.segments: list[FinishedSegment] = []
        self.gaps: list[tuple[float, Gap]] = []
        self.states: list[tuple[str, IngestState]] = []

    def on_segment(self, seg: FinishedSegment) -> None:
        self.segments.append(seg)

    def on_gap(self, gap: Gap) -> None:
        self.gaps.append((time.monotonic(), gap))

    def on_state(self, code: str, state: IngestState) -> None:
        self.states.append((code, state))

    def of(self, code: str) -> list[FinishedSegment]:
        return sorted(
            (s for s in self.segments if s.camera_code == code), key=lambda s: s.start_utc
        )

    def gaps_of(self, code: str) -> list[Gap]:
        return [g for _t, g in self.gaps if g.camera_code == code]


def packet_count(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return int(out.stdout.decode().strip().split(",")[0])


def test_records_eight_cameras_and_isolates_bad_ones(
    volume: Path, main_h264: object, main_h265: object, car_av: object
) -> None:
    require_gst()
    events = Events()
    with Simulator.standard(8, sub=False, h265=1, audio=1, clock_mount=None) as sim:
        cams = [CameraSpec(c, sim.url(c)) for c in sim.codes]
        cams += [
            CameraSpec("MALFORMED", "rtsp://cam:99999/x"),
            CameraSpec("DOWN", f"rtsp://127.0.0.1:{free_port()}/x"),
        ]
        recorder = Recorder(
            cams, volume, on_segment=events.on_segment, on_gap=events.on_gap,
            on_state=events.on_state, segment_duration=10.0,
        )  # fmt: skip

        async def run() -> None:
            asyncio.get_running_loop().call_later(21.0, recorder.stop)
            await recorder.run(handle_signals=False)

        started = time.time()
        asyncio.run(run())
        elapsed = time.time() - started
    for code in sim.codes:
        segs = events.of(code)
        assert len(segs) >= 2, code
        for a, b in itertools.pairwise(segs):
            assert a.end_utc == pytest.approx(b.start_utc, abs=1e-6)  # contiguous
        total = sum(s.duration for s in segs)
        assert total >= elapsed - 3.0, code
        assert segs[0].duration == pytest.approx(10.0, abs=0.01)
        for s in segs:
            probe = ffprobe(s.path)
            assert float(probe["format"]["duration"]) == pytest.approx(s.duration, abs=0.2)
            assert packet_count(s.path) == s.frames
            assert s.end_utc - s.start_utc == pytest.approx(s.duration, abs=0.01)
        assert (code, IngestState.ONLINE) in events.states
        stopped = [g for g in events.gaps_of(code) if g.cause == GapCause.RECORDER_STOPPED]
        assert len(stopped) == 1
        assert stopped[0].start_utc == pytest.approx(segs[-1].end_utc)
    hevc = events.of("CAM01")
    assert hevc[0].codec == "h265"
    assert hevc[0].codec_string.startswith("hvc1.1.6")
    assert ffprobe(hevc[0].path)["streams"][0]["codec_name"] == "hevc"
    decoded, errors = decode_frames(hevc[0].path)
    assert decoded == hevc[0].frames
    assert not errors
    av = events.of("CAM02")[0]
    assert av.has_audio
    assert av.audio_codec_string == "mp4a.40.2"
    assert sorted(s["codec_name"] for s in ffprobe(av.path)["streams"]) == ["aac", "h264"]
    h264 = events.of("CAM03")[0]
    decoded, errors = decode_frames(h264.path)
    assert decoded == h264.frames == 100
    assert not errors
    assert (h264.width, h264.height, h264.fps) == (1920, 1080, 10.0)
    malformed = events.gaps_of("MALFORMED")
    assert malformed[0].cause == GapCause.STREAM_ERROR
    assert "port" in malformed[0].detail
    down = events.gaps_of("DOWN")
    assert down[0].cause == GapCause.CAMERA_UNREACHABLE
    assert down[0].end_utc is None
    assert not events.of("MALFORMED")
    assert not events.of("DOWN")
    # Files are where a person would look for them.
    assert all(s.path.parent.parent.name == s.camera_code for s in events.segments)


async def _record_until(ingest: CameraIngest, script: Callable[[], object]) -> None:
    task = asyncio.create_task(ingest.run())
    try:
        await script()  # type: ignore[misc]
    finally:
        ingest.stop()
        await task


def test_server_killed_and_restarted(volume: Path, main_h264: object) -> None:
    require_gst()
    events = Events()
    sim = Simulator.standard(1, sub=False, clock_mount=None)
    sim.start()
    ready_at: list[float] = []
    try:
        ingest = CameraIngest(
            "CAM01", sim.url("CAM01"), volume, on_segment=events.on_segment, on_gap=events.on_gap,
            on_state=events.on_state, stall_timeout=3.0,
        )  # fmt: skip

        async def script() -> None:
            await asyncio.sleep(4.0)
            sim.stop(kill=True)
            await asyncio.sleep(3.0)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sim.start)
            ready_at.append(time.monotonic())
            for _ in range(80):
                await asyncio.sleep(0.1)
                if any(
                    g.end_utc is not None and g.cause != GapCause.RECORDER_STOPPED
                    for _t, g in events.gaps
                ):
                    break
            await asyncio.sleep(2.5)

        asyncio.run(_record_until(ingest, script))
    finally:
        sim.stop()
    gaps = [(t, g) for t, g in events.gaps if g.cause != GapCause.RECORDER_STOPPED]
    opened = [g for _t, g in gaps if g.end_utc is None]
    closed = [(t, g) for t, g in gaps if g.end_utc is not None]
    assert len(opened) == 1
    assert len(closed) == 1
    t_closed, gap = closed[0]
    assert gap.id == opened[0].id
    assert gap.cause in (GapCause.CAMERA_UNREACHABLE, GapCause.STREAM_STALLED)
    assert t_closed - ready_at[0] <= 5.0  # recording resumed within 5 s of the camera returning
    segs = events.of("CAM01")
    before = [s for s in segs if s.end_utc <= gap.start_utc + 1e-6]
    after = [s for s in segs if s.start_utc >= gap.end_utc - 1e-6]  # type: ignore[operator]
    assert before
    assert after
    assert len(before) + len(after) == len(segs)
    assert before[-1].end_utc == pytest.approx(gap.start_utc)
    assert after[0].start_utc == pytest.approx(gap.end_utc)
    assert 2.5 <= gap.end_utc - gap.start_utc <= 9.0  # type: ignore[operator]
    for s in segs:
        assert float(ffprobe(s.path)["format"]["duration"]) == pytest.approx(s.duration, abs=0.2)
    assert [st for c, st in events.states] == [
        IngestState.ONLINE,
        IngestState.OFFLINE,
        IngestState.ONLINE,
        IngestState.OFFLINE,
    ]
    assert len(ingest.stats.reconnects) == 2


def test_stalled_stream_is_detected(volume: Path, main_h264: object) -> None:
    require_gst()
    events = Events()
    with Simulator.standard(1, sub=False, clock_mount=None) as sim:
        pid = sim.pid
        assert pid is not None
        ingest = CameraIngest(
            "CAM01", sim.url("CAM01"), volume, on_segment=events.on_segment, on_gap=events.on_gap,
            stall_timeout=1.5, response_timeout=1.0,
        )  # fmt: skip

        async def script() -> None:
            await asyncio.sleep(3.0)
            os.kill(pid, signal.SIGSTOP)  # camera freezes: TCP stays up, no data
            try:
                await asyncio.sleep(3.0)
            finally:
                os.kill(pid, signal.SIGCONT)
            for _ in range(80):
                await asyncio.sleep(0.1)
                if any(g.end_utc is not None for _t, g in events.gaps):
                    break
            await asyncio.sleep(1.0)

        asyncio.run(_record_until(ingest, script))
    gaps = [g for _t, g in events.gaps if g.cause != GapCause.RECORDER_STOPPED]
    assert gaps[0].cause == GapCause.STREAM_STALLED
    assert gaps[-1].end_utc is not None
    assert ingest.stats.fps == pytest.approx(10.0, abs=2.0)
    assert ingest.stats.bitrate > 1e6
    assert len(events.of("CAM01")) >= 2


def test_record_cli_with_workers_stops_cleanly_on_sigterm(
    tmp_path: Path, main_h264: object
) -> None:
    """``python -m vigil.media.record --workers 2``: SIGTERM finishes every open segment."""
    require_gst()
    volume = tmp_path / "vol"
    events_path = tmp_path / "events.jsonl"
    with Simulator.standard(2, sub=False, clock_mount=None) as sim:
        cams = tmp_path / "cams.json"
        cams.write_text(
            json.dumps([{"code": c, "url": sim.url(c)} for c in sim.codes]), encoding="utf-8"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.media.record", "--volume", str(volume),
             "--cameras-json", str(cams), "--workers", "2", "--events", str(events_path)],
            cwd=Path(__file__).resolve().parents[3],
        )  # fmt: skip
        try:
            time.sleep(4.5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    events = [
        json.loads(line)
        for f in sorted(tmp_path.glob("events.jsonl.*"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    segments = [e for e in events if e["event"] == "segment"]
    assert sorted(e["camera_code"] for e in segments) == ["CAM01", "CAM02"]
    stopped = [e for e in events if e["event"] == "gap" and e["cause"] == "recorder_stopped"]
    assert len(stopped) == 2
    for seg in segments:
        path = Path(seg["path"])
        assert path.stat().st_size == seg["size"]
        assert float(ffprobe(path)["format"]["duration"]) == pytest.approx(seg["duration"], abs=0.2)
        assert seg["duration"] >= 2.0


def test_unwritable_volume_reports_storage_error(tmp_path: Path, main_h264: object) -> None:
    require_gst()
    volume = tmp_path / "volume-is-a-file"
    volume.write_text("not a directory")
    events = Events()
    with Simulator.standard(1, sub=False, clock_mount=None) as sim:
        ingest = CameraIngest("CAM01", sim.url("CAM01"), volume, on_gap=events.on_gap)

        async def script() -> None:
            for _ in range(60):
                await asyncio.sleep(0.1)
                if events.gaps:
                    break

        asyncio.run(_record_until(ingest, script))
    first = events.gaps[0][1]
    assert first.cause == GapCause.STORAGE_ERROR
    assert "cannot write recordings" in first.detail
