"""CameraIngest behaviour that needs no camera: URL problems, gap bounds, stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from vigil.media.ingest import CameraIngest, CameraSpec, Gap, GapCause, Recorder
from vigil.media.simulator import free_port


def _run(ingests: list[CameraIngest], seconds: float) -> None:
    async def go() -> None:
        tasks = [asyncio.create_task(i.run()) for i in ingests]
        await asyncio.sleep(seconds)
        for i in ingests:
            i.stop()
        await asyncio.gather(*tasks)

    asyncio.run(go())


@pytest.mark.parametrize("floor_offset", [-100.0, 100.0])
def test_first_gap_starts_at_run_start_not_before_floor(
    tmp_path: Path, floor_offset: float
) -> None:
    gaps: list[Gap] = []
    now = time.time()
    ingest = CameraIngest(
        "CAM01",
        f"rtsp://127.0.0.1:{free_port()}/x",
        tmp_path,
        on_gap=gaps.append,
        floor_utc=now + floor_offset,
    )
    _run([ingest], 0.8)
    first = gaps[0]
    assert first.cause == GapCause.CAMERA_UNREACHABLE
    assert first.end_utc is None
    assert first.start_utc == pytest.approx(max(now, now + floor_offset), abs=0.5)
    assert ingest.stats.last_error.endswith("refused the connection")
    # On stop the unreachable gap is closed and a recorder_stopped gap opens after it.
    closed = [g for g in gaps if g.id == first.id and g.end_utc is not None]
    stopped = [g for g in gaps if g.cause == GapCause.RECORDER_STOPPED]
    assert len(closed) == 1
    assert len(stopped) == 1
    assert stopped[0].start_utc == closed[0].end_utc


def test_unparseable_url_does_not_break_the_recorder(tmp_path: Path) -> None:
    gaps: list[Gap] = []
    recorder = Recorder(
        [CameraSpec("A", "rtsp://[::1/x"), CameraSpec("B", "rtsp://user:pw@cam:notaport/x")],
        tmp_path,
        on_gap=gaps.append,
    )

    async def go() -> None:
        asyncio.get_running_loop().call_later(0.3, recorder.stop)
        await recorder.run(handle_signals=False)

    asyncio.run(go())
    causes = {(g.camera_code, g.cause) for g in gaps}
    assert ("A", GapCause.STREAM_ERROR) in causes
    assert ("B", GapCause.STREAM_ERROR) in causes
    assert all("pw" not in g.detail for g in gaps)
