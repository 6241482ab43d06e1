"""A parent's copy of face-demographics-walking.gif, through the whole pipeline (recorder
segments, the request, the board, the export worker, the package): no face is detectable
in the released frames by a detector the redactor does not use (dlib's HOG), while the
same detector finds the faces in the original, which stays at the school linked by hash."""

from __future__ import annotations

import json
from typing import Any

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


def _faces(detector: Any, img: Any, threshold: float) -> int:
    rects, _scores, _ = detector.run(to_luma(img), 2, threshold)
    return len(rects)


def test_released_copy_has_no_detectable_face(users, record_footage, past, approved_copy) -> None:  # type: ignore[no-untyped-def]
    from vigil.access import worker
    from vigil.accounts.actor import Actor

    record_footage("CAM-010", past(), 2.9, spec=FACES, segment_seconds=2.0)
    req = approved_copy(record=False, start=0.0, end=2.9, who="phuhuynh", kind="guardian")
    assert req.redact and req.watermark  # a copy leaving the school
    job = services.create_export(Actor(user=users["admin"]), req)
    worker.run_pending("test-worker")
    job.refresh_from_db()
    assert job.state == "done", job.error
    package = job.package
    assert package.redacted
    root = services.package_dir(package)
    manifest = json.loads(package.manifest)
    (clip,) = manifest["clips"]
    released = root / clip["file"]
    original = root.parent / f"{package.name}.original" / clip["derived_from"]["file"]
    # the original is kept at the school, outside the released package, linked by hash
    assert pkg.sha256_hex(original.read_bytes()) == clip["derived_from"]["sha256"]
    assert not any("original" in name for name in pkg.package_files(root))
    assert clip["treatment"]["tracks"] >= 2
    assert clip["audio"] is False

    detector = dlib.get_frontal_face_detector()
    before = list(decode_frames(original))
    after = list(decode_frames(released))
    assert len(after) == len(before) >= 30
    assert sum(_faces(detector, f, -0.3) for f in before[::3]) >= 10  # faces are there
    for i, frame in enumerate(after):
        assert _faces(detector, frame, -0.5) == 0, f"a face is detectable in frame {i}"
    # the watermark (request number, recipient) is burnt into the bottom-left corner
    import numpy as np

    corner = np.abs(after[0][-40:, :160].astype(int) - before[0][-40:, :160].astype(int))
    assert corner.mean() > 20
    report = pkg.verify(root, services.site_record(package, exact=True))
    assert report.ok, report.problems
