"""The camera simulator: continuous timestamps across the loop point, clock mount."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

import pytest

from vigil.media.rtp import Frame, make_depacketizer
from vigil.media.rtsp import RtspClient
from vigil.media.segment import SegmentWriter
from vigil.media.simulator import CameraMount, Simulator
from vigil.media.simulator.fixtures import SUB_H264
from vigil.media.tests.conftest import require_gst
from vigil.media.tests.helpers import decode_frames, fixture_or_skip

pytestmark = [pytest.mark.rtsp, pytest.mark.footage, pytest.mark.slow]

LOOP = dataclasses.replace(SUB_H264, name="loop-h264", duration=2.0)


async def receive(url: str, seconds: float) -> tuple[list[Frame], int]:
    frames: list[Frame] = []
    client = RtspClient(url)
    await client.connect()
    await client.options()
    desc = await client.describe()
    track = desc.tracks[0]
    dp = make_depacketizer(track.encoding, track=0, fmtp=track.fmtp, on_frame=frames.append)
    await client.start({0: dp.push})
    await asyncio.sleep(seconds)
    await client.teardown()
    client.close()
    return frames, dp.lost


def test_loop_point_keeps_stream_continuous(tmp_path: Path) -> None:
    require_gst()
    fx = fixture_or_skip(LOOP)
    with Simulator([CameraMount("LOOP", "main", fx)], clock_mount=None) as sim:
        frames, lost = asyncio.run(receive(sim.url("LOOP"), 5.0))
    assert lost == 0
    assert len(frames) >= 40  # real-time pace: ~10 fps for 5 s
    assert len(frames) <= 56
    steps = {b.ticks - a.ticks for a, b in itertools.pairwise(frames)}
    assert steps == {9000}  # continuous timestamps through two loop points
    keys = [i for i, f in enumerate(frames) if f.keyframe]
    assert keys[:3] == [0, 20, 40]
    assert frames[20].data == frames[0].data  # the loop restarted the clip
    writer = SegmentWriter(tmp_path, "LOOP", target_duration=60)
    for f in frames:
        writer.write(f)
    seg = writer.close()
    assert seg is not None
    done = seg.finish()
    decoded, errors = decode_frames(done.path)
    assert decoded == len(frames)
    assert not errors


def test_clock_mount_streams_live_video(main_h264: object) -> None:
    require_gst()
    with Simulator([], clock_mount="/clock") as sim:
        frames, lost = asyncio.run(receive(sim.clock_url, 2.0))
    assert lost == 0
    assert len(frames) >= 15
    assert frames[0].params is not None
    assert (frames[0].params.width, frames[0].params.height) == (
        640,
        360,
    )
