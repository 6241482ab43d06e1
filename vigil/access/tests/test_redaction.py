"""A parent's copy of face-demographics-walking.gif, through the whole pipeline (recorder
segments, the request, the board, the export worker, the package): no face is detectable
in the released frames by a detector the redactor does not use (dlib's HOG at a lowered
threshold, the image upsampled twice), while the same detector finds the faces in the
original, which stays at the school linked by hash."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from vigil.access import package as pkg
from vigil.access import services
from vigil.media.export import decode_frames
from vigil.media.simulator.fixtures import FixtureSpec
from vigil.vision.imageops import to_luma

pytestmark = [pytest.mark.django_db, pytest.mark.footage, pytest.mark.slow]
dlib = pytest.importorskip("dlib", reason="dlib-bin provides the independent face detector")

FACES = FixtureSpec(
    name="faces-walking",
    source="face-demographics-walking.gif",
    codec="h264",
    width=480,
    height=270,
    fps=12.0,
    bitrate_kbps=1500,
    duration=2.9,
)
Box = tuple[int, int, int, int]


def _faces(detector: Any, img: Any, threshold: float) -> list[Box]:
    rects, _scores, _ = detector.run(to_luma(img), 2, threshold)
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _release(users, record_footage, past, approved_copy, **terms):  # type: ignore[no-untyped-def]
    from vigil.access import worker
    from vigil.accounts.actor import Actor

    record_footage("CAM-010", past(), 2.9, spec=FACES, segment_seconds=2.0)
    req = approved_copy(record=False, start=0.0, end=2.9, who="phuhuynh", kind="guardian", **terms)
    assert req.redact  # a copy leaving the school
    job = services.create_export(Actor(user=users["admin"]), req)
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == "done", job.error
    package = job.package
    root = services.package_dir(package)
    (clip,) = json.loads(package.manifest)["clips"]
    original = root.parent / f"{package.name}.original" / clip["derived_from"]["file"]
    return package, clip, root / clip["file"], original


def test_released_copy_has_no_detectable_face(users, record_footage, past, approved_copy) -> None:  # type: ignore[no-untyped-def]
    """The faces are those dlib finds in the original at -0.5 (two people, nearly every
    frame); in the released copy (blurred, re-encoded, watermark burnt in: a parent's
    defaults) dlib at the same low threshold finds none of them. What else it finds at
    that threshold lies away from every face: a dress's embroidery, or the watermark's
    faint text over a hand, next to the blurred patch."""
    package, clip, released, original = _release(users, record_footage, past, approved_copy)
    assert package.redacted
    # the original is kept at the school, outside the released package, linked by hash
    assert pkg.sha256_hex(original.read_bytes()) == clip["derived_from"]["sha256"]
    assert not any("original" in n for n in pkg.package_files(released.parent.parent))
    assert clip["treatment"]["tracks"] >= 2 and clip["audio"] is False
    detector = dlib.get_frontal_face_detector()
    before = list(decode_frames(original))
    after = list(decode_frames(released))
    assert len(after) == len(before) >= 30
    truth = [_faces(detector, f, -0.5) for f in before]
    assert sum(len(t) for t in truth) >= 1.5 * len(before)  # both faces, most frames
    assert sum(len(_faces(detector, f, 0.0)) for f in before) >= len(before) // 2  # clearly
    elsewhere = 0
    for i, frame in enumerate(after):
        found = _faces(detector, frame, -0.5)
        visible = [f for f in found if any(_overlaps(f, t) for t in truth[i])]
        assert visible == [], f"frame {i}: a face is detectable at {visible}"
        elsewhere += len(found)
    assert elsewhere <= len(after) // 5
    # the watermark (request number, recipient) is burnt into the bottom-left corner
    corner = np.abs(after[0][-40:, :160].astype(int) - before[0][-40:, :160].astype(int))
    assert corner.mean() > 20
    report = pkg.verify(released.parent.parent, services.site_record(package, exact=True))
    assert report.ok, report.problems
