from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from vigil.vision.quality import (
    CameraSpec,
    DailyQuality,
    QualitySampler,
    assess_quality,
    estimate_noise,
    measure_sharpness,
)

SOURCES = (
    "one-by-one-person-detection.mp4",
    "bottle-detection.mp4",
    "classroom.gif",
    "worker-zone-detection.gif",
)


@pytest.mark.parametrize("source", SOURCES)
def test_score_drops_on_blurred_and_dark_footage(footage: Any, source: str) -> None:
    frames, _ = footage(source, fps=1.0)
    for f in frames[:3]:
        good = assess_quality(f.luma)
        blurred = assess_quality(cv2.GaussianBlur(f.luma, (0, 0), 4.0))
        dark = assess_quality((f.luma * 0.15).astype(np.uint8))
        assert good.passed, good
        assert good.score >= 80, good
        assert blurred.score <= good.score - 25
        assert not blurred.passed
        assert "blurry" in {i.code for i in blurred.issues}
        assert dark.score <= good.score - 25
        assert not dark.passed
        assert "too_dark" in {i.code for i in dark.issues}


def test_reference_sharpness_catches_a_mild_blur_in_a_low_detail_scene(footage: Any) -> None:
    frames, _ = footage("car-detection.mp4", fps=1.0)
    luma = frames[2].luma
    ref = measure_sharpness(luma)
    soft = cv2.GaussianBlur(luma, (0, 0), 3.0)
    without = assess_quality(soft)
    with_ref = assess_quality(soft, reference_sharpness=ref)
    assert "sharpness_drop" in {i.code for i in with_ref.issues}
    assert with_ref.score < without.score
    assert not with_ref.passed


def test_spec_resolution_and_bitrate() -> None:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (360, 640), np.uint8), (0, 0), 1.0)
    img = cv2.normalize(img, None, 30, 220, cv2.NORM_MINMAX)
    ok = assess_quality(img, spec=CameraSpec(640, 360, 512), bitrate_kbps=500)
    assert not {"low_resolution", "low_bitrate"} & {i.code for i in ok.issues}
    bad = assess_quality(img, spec=CameraSpec(1920, 1080, 2000), bitrate_kbps=300)
    codes = {i.code for i in bad.issues}
    assert {"low_resolution", "low_bitrate"} <= codes
    assert bad.score < ok.score
    assert not bad.passed
    assert "1920x1080" in next(i.message for i in bad.issues if i.code == "low_resolution")
    high = assess_quality(img, spec=CameraSpec(640, 360, 512), bitrate_kbps=2000)
    assert "high_bitrate" in {i.code for i in high.issues}


def test_noise_estimate_tracks_added_noise() -> None:
    rng = np.random.default_rng(1)
    base = np.full((360, 640), 128, np.uint8)
    for sigma in (2.0, 5.0, 10.0):
        noisy = np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8)
        assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.15)


def test_sampler_and_day_report(footage: Any) -> None:
    frames, _ = footage("one-by-one-person-detection.mp4", fps=5.0)
    sampler = QualitySampler(CameraSpec(768, 432), interval=10.0)
    day = DailyQuality()
    samples = [s for f in frames if (s := sampler.maybe_sample(f.luma, f.ts)) is not None]
    assert len(samples) == 14  # 139 s of video, one every 10 s
    day.extend(samples)
    good = day.report()
    assert good.passed
    assert good.samples == 14
    assert good.issues == ()
    assert good.summary.startswith("PASS")
    # the camera gets dirty in the afternoon: blurry samples dominate
    for f in frames[::40]:
        day.add(assess_quality(cv2.GaussianBlur(f.luma, (0, 0), 5.0), spec=CameraSpec(768, 432)))
    day.extend([assess_quality(cv2.GaussianBlur(f.luma, (0, 0), 5.0)) for f in frames[::20]])
    bad = day.report()
    assert not bad.passed
    assert bad.issues
    assert bad.issues[0].code == "blurry"
    assert "FAIL" in bad.summary
    assert "blurry" in bad.summary.lower()
    assert DailyQuality().report().summary.startswith("No quality samples")
