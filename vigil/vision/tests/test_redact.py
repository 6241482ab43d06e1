"""Redaction must leave no face detectable in face-demographics-walking.gif.

The redactor detects with OpenCV Haar cascades; the check uses a *different*
detector, dlib's HOG + linear SVM frontal face detector (shipped compiled in the
dlib-bin wheel, no model file), with its threshold lowered to -0.5 and the image
upsampled twice, over the whole frame; and Haar cascades the redactor does not use
(frontalface_alt, alt_tree) at the lowest setting (minNeighbors=1) inside every
redacted region.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from vigil.vision.imageops import to_luma
from vigil.vision.redact import (
    FaceDetector,
    FaceRedactor,
    RedactConfig,
    apply_plan,
    plan_redaction,
    track_at,
    watermark,
)

dlib = pytest.importorskip("dlib", reason="dlib-bin provides the independent face detector")

GIF = "face-demographics-walking.gif"


@pytest.fixture(scope="module")
def clip(footage: Any) -> tuple[list[np.ndarray], Any]:
    frames, _ = footage(GIF, bgr=True)
    bgr = [f.bgr for f in frames]
    plan = plan_redaction(bgr)
    return bgr, plan


_DLIB: list[Any] = []


def _dlib_faces(img: np.ndarray, threshold: float) -> list[tuple[int, int, int, int]]:
    if not _DLIB:
        _DLIB.append(dlib.get_frontal_face_detector())
    det = _DLIB[0]
    rects, _scores, _ = det.run(to_luma(img), 2, threshold)
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]


def test_no_face_detectable_after_redaction(clip: tuple[list[np.ndarray], Any]) -> None:
    frames, plan = clip
    redacted = apply_plan(frames, plan)
    original_faces = sum(len(_dlib_faces(f, -0.3)) for f in frames[::3])
    assert original_faces >= 10  # the verifier does see the faces in the original
    for i, img in enumerate(redacted):
        assert _dlib_faces(img, -0.5) == [], f"dlib still finds a face in frame {i}"

    base = cv2.data.haarcascades  # type: ignore[attr-defined]
    verifiers = [
        cv2.CascadeClassifier(base + "haarcascade_frontalface_alt.xml"),
        cv2.CascadeClassifier(base + "haarcascade_frontalface_alt_tree.xml"),
    ]
    for i, img in enumerate(redacted):
        grey = to_luma(img)
        for region in plan.regions(i):
            x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
            x1, y1 = int(region[2]), int(region[3])
            crop = grey[y0:y1, x0:x1]
            if crop.shape[0] < 8 or crop.shape[1] < 8:
                continue
            crop = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
            for v in verifiers:
                hits = v.detectMultiScale(crop, 1.1, 1, minSize=(20, 20))
                assert len(hits) == 0, f"frame {i}: a face-like pattern survives in {region}"


def test_tracking_covers_every_frame(clip: tuple[list[np.ndarray], Any]) -> None:
    frames, plan = clip
    persons = [t for t in plan.tracks if len(t.detections) >= len(frames) // 2]
    assert len(persons) == 2  # the two people walking towards the camera
    for t in persons:
        assert set(t.boxes) == set(range(len(frames)))  # no frame left uncovered


def test_keep_track_leaves_that_face_visible(clip: tuple[list[np.ndarray], Any]) -> None:
    frames, plan = clip
    last = len(frames) - 1
    person = max(plan.tracks, key=lambda t: len(t.detections))
    box = person.detections[last]
    cx = (box[0] + box[2]) / 2 / plan.width
    cy = (box[1] + box[3]) / 2 / plan.height
    kid = track_at(plan, last, cx, cy)
    assert kid == person.id
    out = apply_plan(frames, plan, keep_tracks={kid})
    x0, y0, x1, y1 = (int(v) for v in box)
    assert np.array_equal(out[last][y0:y1, x0:x1], frames[last][y0:y1, x0:x1])
    others = [t for t in plan.tracks if t.id != kid and last in t.boxes]
    assert others
    o = others[0].detections.get(last) or others[0].boxes[last]
    ox0, oy0, ox1, oy1 = (int(max(0, v)) for v in o)
    assert not np.array_equal(out[last][oy0:oy1, ox0:ox1], frames[last][oy0:oy1, ox0:ox1])


def test_streaming_redactor_carries_missed_detections(footage: Any) -> None:
    frames, _ = footage(GIF, bgr=True)
    red = FaceRedactor(RedactConfig(profile=False))
    outs = [red.process(f.bgr) for f in frames[:6]]
    assert all(o.shape == frames[0].bgr.shape for o in outs)
    assert all(_dlib_faces(o, 0.0) == [] for o in outs)


def test_watermark_burns_text(footage: Any) -> None:
    frames, _ = footage("classroom.gif", bgr=True)
    img = frames[0].bgr
    out = watermark(img, ["Yêu cầu YC-2026-0042", "Người nhận: Phụ huynh Nguyễn Văn Đức"])
    assert out.shape == img.shape
    assert out is not img
    diff = np.abs(out.astype(int) - img.astype(int)).sum(axis=2) > 30
    assert diff[-60:, :200].mean() > 0.2  # the label box, bottom-left
    assert diff[:100].mean() > 0.005  # the faint tiled copy
    grey = watermark(to_luma(img), ["x"], tiled=False, position="top-right")
    assert grey.ndim == 3


def test_person_detector_adds_head_regions(footage: Any) -> None:
    frames, _ = footage("one-by-one-person-detection.mp4", fps=1.0, bgr=True)
    img = frames[30].bgr  # someone stands at the table
    cfg = RedactConfig(persons=True, profile=False)
    heads = [b for b in FaceDetector(cfg).detect(img) if b[1] < 120]
    assert heads  # the head of the standing person (her back is to the camera)
    x0, _y0, x1, _y1 = heads[0]
    assert 330 <= (x0 + x1) / 2 <= 500
