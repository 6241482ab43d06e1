"""Periodic image-quality measurement and the camera-day report (Art. 2.1, 8.2).

:func:`assess_quality` measures one frame; :class:`QualitySampler` decides when to take
a sample (default once a minute); :class:`DailyQuality` aggregates a camera's samples
of one day into a pass/fail verdict with human-readable reasons for the maintenance
list.

Measures (all on the luma plane, brought to 360 px high so that numbers from a 1080p
main stream and a 360p sub-stream compare):

* ``sharpness`` - std of the Laplacian over std of the picture (the variance of the
  Laplacian, normalised by contrast so that lighting does not change it). Sharp
  footage scores about 0.12-0.45, a defocused lens under 0.06. It depends on the scene,
  so a camera's own commissioning value (``reference_sharpness``) makes the strongest
  check: a drop to half of it is reported whatever the absolute value;
* ``brightness`` (mean luma), ``dark_clip`` / ``bright_clip`` (share of crushed or
  blown pixels);
* ``contrast`` - RMS contrast (std of luma);
* ``noise`` - Immerkaer's fast noise estimate (sigma in grey levels, from a 3x3
  second-difference operator, which cancels image structure but not pixel noise);
* ``resolution`` and ``bitrate`` against the camera's spec (:class:`CameraSpec`).

Each measure maps to a 0-100 sub-score by a piecewise-linear ramp; the score is their
weighted mean (weights of measures that are not available are redistributed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np

from vigil.vision.imageops import U8, resize_to_height, to_luma

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """What the camera is supposed to deliver on the analysed stream."""

    width: int
    height: int
    bitrate_kbps: float | None = None
    fps: float | None = None


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Pass/fail limits and the ramps that turn measures into 0-100 sub-scores.

    Each ramp is (value at 0 points, value at 100 points)."""

    pass_score: float = 60.0
    sharpness_ramp: tuple[float, float] = (0.03, 0.11)
    sharpness_issue: float = 0.07
    sharpness_drop: float = 0.5  # below this share of the reference sharpness
    dark_ramp: tuple[float, float] = (20.0, 70.0)
    bright_ramp: tuple[float, float] = (240.0, 190.0)
    dark_issue: float = 45.0
    bright_issue: float = 210.0
    clip_ramp: tuple[float, float] = (0.25, 0.03)
    clip_issue: float = 0.10
    contrast_ramp: tuple[float, float] = (8.0, 35.0)
    contrast_issue: float = 18.0
    noise_ramp: tuple[float, float] = (8.0, 2.5)
    noise_issue: float = 5.0
    bitrate_ramp: tuple[float, float] = (0.3, 0.75)  # share of the spec bitrate
    bitrate_issue: float = 0.6
    bitrate_high_issue: float = 1.6  # above this share: eats the storage budget
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "sharpness": 35.0,
            "exposure": 25.0,
            "contrast": 15.0,
            "noise": 10.0,
            "resolution": 10.0,
            "bitrate": 5.0,
        }
    )


@dataclass(frozen=True, slots=True)
class QualityIssue:
    """A reason why a sample (or a day) is below standard. ``code`` is stable (for
    translation on the web side); ``message`` is plain English."""

    code: str
    message: str
    value: float
    limit: float


@dataclass(frozen=True, slots=True)
class QualitySample:
    ts: float
    width: int
    height: int
    sharpness: float
    brightness: float
    dark_clip: float
    bright_clip: float
    contrast: float
    noise: float
    bitrate_kbps: float | None
    subscores: dict[str, float]
    score: float
    issues: tuple[QualityIssue, ...]
    passed: bool


def _ramp(value: float, ramp: tuple[float, float]) -> float:
    zero, full = ramp
    if zero == full:
        return 100.0 if value >= full else 0.0
    t = (value - zero) / (full - zero)
    return 100.0 * min(1.0, max(0.0, t))


def measure_sharpness(luma: U8) -> float:
    """std(Laplacian) / std(luma) at 360 px high (0 for a flat frame)."""
    img = luma if luma.shape[0] <= 360 else resize_to_height(luma, 360)
    f = img.astype(np.float32)
    std = float(f.std())
    if std < 1.0:
        return 0.0
    lap = cast(np.ndarray, cv2.Laplacian(f, cv2.CV_32F))
    return float(lap.std()) / std


def estimate_noise(luma: U8) -> float:
    """Immerkaer (1996) noise sigma in grey levels."""
    f = luma.astype(np.float32)
    h, w = f.shape
    if h < 3 or w < 3:
        return 0.0
    conv = np.asarray(cv2.filter2D(f, cv2.CV_32F, _IMMERKAER), np.float32)
    total = float(np.abs(conv[1:-1, 1:-1]).sum())
    return float(math.sqrt(math.pi / 2.0) * total / (6.0 * (w - 2) * (h - 2)))


def assess_quality(
    frame: U8,
    ts: float = 0.0,
    *,
    spec: CameraSpec | None = None,
    bitrate_kbps: float | None = None,
    reference_sharpness: float | None = None,
    thresholds: QualityThresholds | None = None,
) -> QualitySample:
    """Measure one frame (grey or BGR) and score it 0-100 with reasons."""
    th = thresholds or QualityThresholds()
    luma = to_luma(frame)
    height, width = int(luma.shape[0]), int(luma.shape[1])
    work = luma if height <= 360 else resize_to_height(luma, 360)
    sharp = measure_sharpness(work)
    f = work.astype(np.float32)
    mean = float(f.mean())
    contrast = float(f.std())
    hist = cv2.calcHist([work], [0], None, [256], [0, 256]).ravel()
    n = float(hist.sum()) or 1.0
    dark_clip = float(hist[:19].sum()) / n  # at or below video black (16) + margin
    bright_clip = float(hist[250:].sum()) / n
    noise = estimate_noise(work)

    sub: dict[str, float] = {}
    issues: list[QualityIssue] = []

    sub["sharpness"] = _ramp(sharp, th.sharpness_ramp)
    if sharp < th.sharpness_issue:
        issues.append(
            QualityIssue(
                "blurry",
                f"Picture is blurry (sharpness {sharp:.3f}, expected at least "
                f"{th.sharpness_issue:.3f}): clean the lens or refocus.",
                sharp,
                th.sharpness_issue,
            )
        )
    if reference_sharpness and sharp < th.sharpness_drop * reference_sharpness:
        sub["sharpness"] = min(sub["sharpness"], 100.0 * sharp / reference_sharpness)
        issues.append(
            QualityIssue(
                "sharpness_drop",
                f"Sharpness fell to {100 * sharp / reference_sharpness:.0f} % of this camera's "
                "reference: dirty, fogged or knocked out of focus.",
                sharp,
                th.sharpness_drop * reference_sharpness,
            )
        )

    exposure = min(_ramp(mean, th.dark_ramp), _ramp(mean, th.bright_ramp))
    exposure = min(exposure, _ramp(dark_clip, th.clip_ramp), _ramp(bright_clip, th.clip_ramp))
    sub["exposure"] = exposure
    if mean < th.dark_issue:
        issues.append(
            QualityIssue(
                "too_dark",
                f"Picture is too dark (mean brightness {mean:.0f}/255): check lighting or IR.",
                mean,
                th.dark_issue,
            )
        )
    elif mean > th.bright_issue:
        issues.append(
            QualityIssue(
                "overexposed",
                f"Picture is overexposed (mean brightness {mean:.0f}/255): check backlight "
                "or exposure settings.",
                mean,
                th.bright_issue,
            )
        )
    if bright_clip > th.clip_issue:
        issues.append(
            QualityIssue(
                "highlights_clipped",
                f"{100 * bright_clip:.0f} % of the picture is blown out (white).",
                bright_clip,
                th.clip_issue,
            )
        )
    if dark_clip > th.clip_issue and mean >= th.dark_issue:
        issues.append(
            QualityIssue(
                "shadows_clipped",
                f"{100 * dark_clip:.0f} % of the picture is crushed to black.",
                dark_clip,
                th.clip_issue,
            )
        )

    sub["contrast"] = _ramp(contrast, th.contrast_ramp)
    if contrast < th.contrast_issue:
        issues.append(
            QualityIssue(
                "low_contrast",
                f"Low contrast (RMS {contrast:.1f}): haze, dirt on the dome or a "
                "washed-out picture.",
                contrast,
                th.contrast_issue,
            )
        )

    sub["noise"] = _ramp(noise, th.noise_ramp)
    if noise > th.noise_issue:
        issues.append(
            QualityIssue(
                "noisy",
                f"Picture is noisy (sigma {noise:.1f} levels): too little light or high gain.",
                noise,
                th.noise_issue,
            )
        )

    if spec is not None:
        area_ratio = (width * height) / max(1, spec.width * spec.height)
        sub["resolution"] = 100.0 * min(1.0, area_ratio)
        if width < spec.width or height < spec.height:
            issues.append(
                QualityIssue(
                    "low_resolution",
                    f"Resolution {width}x{height} is below the required "
                    f"{spec.width}x{spec.height}.",
                    area_ratio,
                    1.0,
                )
            )
        if spec.bitrate_kbps and bitrate_kbps is not None:
            share = bitrate_kbps / spec.bitrate_kbps
            sub["bitrate"] = _ramp(share, th.bitrate_ramp)
            if share < th.bitrate_issue:
                issues.append(
                    QualityIssue(
                        "low_bitrate",
                        f"Bitrate {bitrate_kbps:.0f} kbit/s is below the expected "
                        f"{spec.bitrate_kbps:.0f} kbit/s: detail is lost to compression.",
                        share,
                        th.bitrate_issue,
                    )
                )
            elif share > th.bitrate_high_issue:
                issues.append(
                    QualityIssue(
                        "high_bitrate",
                        f"Bitrate {bitrate_kbps:.0f} kbit/s is well above the planned "
                        f"{spec.bitrate_kbps:.0f} kbit/s: the 20-day retention budget is at risk.",
                        share,
                        th.bitrate_high_issue,
                    )
                )

    total_w = sum(th.weights.get(k, 0.0) for k in sub)
    score = sum(sub[k] * th.weights.get(k, 0.0) for k in sub) / total_w if total_w else 0.0
    blocking = {"blurry", "sharpness_drop", "too_dark", "low_resolution"}
    passed = score >= th.pass_score and not any(i.code in blocking for i in issues)
    return QualitySample(
        ts=ts,
        width=width,
        height=height,
        sharpness=sharp,
        brightness=mean,
        dark_clip=dark_clip,
        bright_clip=bright_clip,
        contrast=contrast,
        noise=noise,
        bitrate_kbps=bitrate_kbps,
        subscores=sub,
        score=round(score, 1),
        issues=tuple(issues),
        passed=passed,
    )


class QualitySampler:
    """Takes a quality sample every ``interval`` seconds of stream time."""

    def __init__(
        self,
        spec: CameraSpec | None = None,
        *,
        interval: float = 60.0,
        reference_sharpness: float | None = None,
        thresholds: QualityThresholds | None = None,
    ) -> None:
        self.spec = spec
        self.interval = interval
        self.reference_sharpness = reference_sharpness
        self.thresholds = thresholds or QualityThresholds()
        self._next: float | None = None

    def due(self, ts: float) -> bool:
        return self._next is None or ts >= self._next or ts + self.interval < self._next

    def maybe_sample(
        self, frame: U8, ts: float, bitrate_kbps: float | None = None
    ) -> QualitySample | None:
        if not self.due(ts):
            return None
        self._next = ts + self.interval
        return assess_quality(
            frame,
            ts,
            spec=self.spec,
            bitrate_kbps=bitrate_kbps,
            reference_sharpness=self.reference_sharpness,
            thresholds=self.thresholds,
        )


@dataclass(frozen=True, slots=True)
class DayIssue:
    code: str
    message: str
    share: float  # of the day's samples


@dataclass(frozen=True, slots=True)
class QualityReport:
    """A camera-day verdict for the maintenance list."""

    samples: int
    score: float  # median sample score
    worst: float  # 10th percentile
    pass_rate: float
    passed: bool
    issues: tuple[DayIssue, ...]

    @property
    def summary(self) -> str:
        if self.samples == 0:
            return "No quality samples (no video?)."
        head = (
            f"{'PASS' if self.passed else 'FAIL'}: score {self.score:.0f}/100 "
            f"(worst 10 %: {self.worst:.0f}), {100 * self.pass_rate:.0f} % of "
            f"{self.samples} samples passed."
        )
        return " ".join(
            [head, *(f"{i.message} ({100 * i.share:.0f} % of samples)" for i in self.issues)]
        )


class DailyQuality:
    """Aggregates one camera's samples of one day."""

    def __init__(
        self,
        *,
        min_pass_rate: float = 0.75,
        issue_share: float = 0.2,
        thresholds: QualityThresholds | None = None,
    ) -> None:
        self.min_pass_rate = min_pass_rate
        self.issue_share = issue_share
        self.thresholds = thresholds or QualityThresholds()
        self._samples: list[QualitySample] = []

    def add(self, sample: QualitySample) -> None:
        self._samples.append(sample)

    def extend(self, samples: Sequence[QualitySample]) -> None:
        self._samples.extend(samples)

    def report(self) -> QualityReport:
        s = self._samples
        if not s:
            return QualityReport(0, 0.0, 0.0, 0.0, False, ())
        scores = np.array([x.score for x in s], np.float64)
        pass_rate = sum(1 for x in s if x.passed) / len(s)
        counts: dict[str, list[QualityIssue]] = {}
        for x in s:
            for issue in x.issues:
                counts.setdefault(issue.code, []).append(issue)
        issues = []
        for code, found in sorted(counts.items(), key=lambda kv: -len(kv[1])):
            share = len(found) / len(s)
            if share >= self.issue_share:
                issues.append(DayIssue(code, found[len(found) // 2].message, share))
        median = float(np.median(scores))
        passed = pass_rate >= self.min_pass_rate and median >= self.thresholds.pass_score
        return QualityReport(
            samples=len(s),
            score=round(median, 1),
            worst=round(float(np.percentile(scores, 10)), 1),
            pass_rate=pass_rate,
            passed=passed,
            issues=tuple(issues),
        )
