"""The sub-stream pipeline on real footage encoded like a camera: samples as the RTSP
depacketizer hands them out, decoded at 5 fps, analysed; settings changes keep the
learned view; a restart closes the open motion event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.analytics.clips import encode, samples, to_sub
from vigil.analytics.pipeline import CameraPipeline
from vigil.vision.decode import read_video
from vigil.vision.motion import MotionConfig
from vigil.vision.pipeline import AnalyserConfig
from vigil.vision.quality import CameraSpec
from vigil.vision.synthetic import TamperParams, apply_tamper

pytestmark = pytest.mark.footage
BASE = 1_800_000_000.0


def _clip(footage: Path, seconds: float, cover_from: float | None = None) -> list:  # type: ignore[type-arg]
    frames = read_video(footage / "one-by-one-person-detection.mp4", max_seconds=seconds)
    params = TamperParams("covered", {"coverage": 0.95, "tone": 90.0, "gradient": 4.0, "side": 1.0})
    subs = []
    for i, f in enumerate(frames):
        sub = to_sub(np.ascontiguousarray(f.luma))
        if cover_from is not None and f.ts >= cover_from:
            sub = apply_tamper(sub, params, noise_seed=i)
        subs.append(sub)
    return list(samples(encode(subs, 10.0)))


def test_pipeline_motion_tamper_and_rate(footage: Path) -> None:
    clip = _clip(footage, 36.0, cover_from=24.0)
    assert clip[0].keyframe and clip[0].params.complete
    p = CameraPipeline(AnalyserConfig(spec=CameraSpec(640, 360)), fps=5.0)
    analysed, motion, tamper = 0, [], []
    for s in clip:
        out = p.feed(s.data, BASE + s.ts, s.keyframe, s.params)
        analysed += out.frames
        motion += out.motion
        tamper += out.tamper
    assert abs(analysed - 36 * 5) <= 2  # 10 fps stream analysed at 5 fps
    starts = [u.event.start - BASE for u in motion if u.kind == "start"]
    assert starts and starts[0] < 24.0  # people walking in before the cover
    raised = [t for t in tamper if t.kind == "raised"]
    assert [t.alert.cause for t in raised] == ["covered"]
    assert 0 < raised[0].alert.raised_at - (BASE + 24.0) <= 10.0
    assert raised[0].alert.snapshot_before and raised[0].alert.snapshot_after
    assert p.reference_ready


def test_reconfigure_keeps_reference_and_restart_flushes(footage: Path) -> None:
    clip = _clip(footage, 20.0)
    p = CameraPipeline(AnalyserConfig(), fps=5.0)
    opened = False
    for s in clip:
        out = p.feed(s.data, BASE + s.ts, s.keyframe, s.params)
        opened = opened or any(u.kind == "start" for u in out.motion)
    assert p.reference_ready
    state = p.save_state()
    p.reconfigure(AnalyserConfig(motion=MotionConfig(masks=(((0, 0), (1, 0), (1, 1)),))))
    assert p.reference_ready and len(p.save_state()) == len(state)
    p.capture_view = True
    for s in clip[:12]:  # a new connection starts at a keyframe
        p.feed(s.data, BASE + 30 + s.ts, s.keyframe, s.params)
    view = p.take_view()
    assert view is not None and view.shape == (360, 640)
    flushed = p.restart_stream()
    assert flushed.tamper == [] and all(u.kind == "end" for u in flushed.motion)
    assert p.analyser.tracker.current is None
    assert (
        p.feed(clip[5].data, BASE + 40, False, clip[5].params).frames == 0
    )  # waits for a keyframe
