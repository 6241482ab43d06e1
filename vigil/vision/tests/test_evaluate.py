from __future__ import annotations

import json

import numpy as np

from vigil.vision.evaluate import (
    LABELS_DIR,
    ScenarioResult,
    load_motion_labels,
    score_motion,
    summarise_tamper,
    tamper_scenarios,
)
from vigil.vision.motion import MotionEvent
from vigil.vision.synthetic import (
    SYNTHETIC_CAUSES,
    TamperParams,
    TamperScenario,
    apply_tamper,
    pingpong_index,
    render_scenario,
)


def test_labels_are_consistent() -> None:
    labels = load_motion_labels()
    for video in labels["videos"]:
        last = 0.0
        for s in video["subjects"]:
            assert last <= s["entry"] <= s["settle"] <= s["leave"] <= s["gone"] <= video["duration"]
            last = s["gone"]
    stored = json.loads((LABELS_DIR / "tamper_scenarios.json").read_text(encoding="utf-8"))
    generated = [s.to_dict() for s in tamper_scenarios(4)]
    assert stored["scenarios"] == generated  # the label file is what the generator makes


def test_scenarios_are_deterministic_and_cover_every_cause() -> None:
    a = tamper_scenarios(2, videos=("classroom.gif",))
    b = tamper_scenarios(2, videos=("car-detection.mp4", "classroom.gif"))
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b if s.source == "classroom.gif"]
    assert {s.cause for s in a} == {*SYNTHETIC_CAUSES, None}
    for s in a:
        assert TamperScenario.from_dict(s.to_dict()) == s
        if s.cause:
            assert s.start >= 20.0
            assert s.end - s.start >= 14.0


def test_synthetic_tampers_change_the_picture() -> None:
    rng = np.random.default_rng(0)
    img = cv2_like = (rng.random((90, 160)) * 255).astype(np.uint8)
    for cause in SYNTHETIC_CAUSES:
        out = apply_tamper(img, TamperParams.draw(cause, 3), frozen=cv2_like)
        assert out.shape == img.shape
        assert out.dtype == np.uint8
        if cause != "frozen":
            assert not np.array_equal(out, img)
    dark = apply_tamper(img, TamperParams.draw("dark", 1))
    assert dark.mean() < 0.25 * img.mean()
    assert [pingpong_index(i, 4) for i in range(8)] == [0, 1, 2, 3, 2, 1, 0, 1]
    frames = [np.full((4, 4), i, np.uint8) for i in range(10)]
    sc = TamperScenario("f", "x", 4.0, "frozen", 1.0, 3.0)
    out = [f[0, 0] for _, f in render_scenario(sc, frames, 5.0, fps=5.0)]
    assert out[:5] == [0, 1, 2, 3, 4]
    assert len(set(out[5:15])) == 1


def test_scoring_counts_false_events_in_empty_room() -> None:
    video = {
        "file": "x",
        "subjects": [{"entry": 10.0, "settle": 12.0, "leave": 20.0, "gone": 22.0}],
    }
    ev = [
        MotionEvent(1, 2.0, 3.0, 2.5, 0.1, (), (0, 0, 1, 1), 3),  # empty room: false
        MotionEvent(2, 10.2, 12.5, 11.0, 0.2, (), (0, 0, 1, 1), 9),
        MotionEvent(3, 19.9, 22.4, 21.0, 0.2, (), (0, 0, 1, 1), 9),
    ]
    res = score_motion(video, ev)
    assert (res.detected, res.false_events, res.leaves_covered) == (1, 1, 1)
    assert abs(res.latencies[0] - 0.2) < 1e-9
    r = ScenarioResult(
        "x", "v", "covered", 20.0, 30.0, [("covered", 20.0, 24.0, 35.0)], True, 4.0, 5.0
    )
    n = ScenarioResult("n", "v", None, 0.0, 0.0, [("moved", 5.0, 9.0, None)], False, None, None)
    rows, extra = summarise_tamper([r, n])
    covered = next(x for x in rows if x.cause == "covered")
    moved = next(x for x in rows if x.cause == "moved")
    assert (covered.recall, covered.precision) == (1.0, 1.0)
    assert moved.precision == 0.0
    assert extra["negative_alerts"] == 1.0
