"""Synthetic tampering applied to real footage, for the evaluation set and the tests.

Each cause imitates what an attacker or an accident does to a fixed camera:

* ``covered`` - a near-uniform patch over most of the frame (hand, cloth, tape, paint
  sprayed on the dome): a random flat tone with faint noise and a soft gradient over
  88-100 % of the picture, the rest of the scene still visible at one edge;
* ``blurred`` - strong Gaussian blur (defocus, grease or a film of spray);
* ``moved`` - the camera turned/knocked: the picture is rotated and translated
  substantially (8-15 degrees, 12-25 % of the width), edges filled by reflection so no
  black border gives the change away;
* ``dark`` - brightness scaled down (lights off without IR, lens hood, a dimmed
  illuminator) to 8-18 % with a little sensor noise;
* ``frozen`` - one frame repeated (stuck encoder or a replayed still image).

All functions are deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import cv2
import numpy as np

from vigil.vision.imageops import U8

SyntheticCause = Literal["covered", "blurred", "moved", "dark", "frozen"]
SYNTHETIC_CAUSES: tuple[SyntheticCause, ...] = ("covered", "blurred", "moved", "dark", "frozen")
#: changes that are NOT tampering and must not raise an alert
Perturbation = Literal["lighting"]


@dataclass(frozen=True, slots=True)
class TamperParams:
    """Parameters of one synthetic tamper, drawn once per scenario."""

    cause: SyntheticCause
    values: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def draw(cause: SyntheticCause, seed: int) -> TamperParams:
        rng = np.random.default_rng(seed)
        v: dict[str, float]
        if cause == "covered":
            v = {
                "coverage": float(rng.uniform(0.88, 1.0)),
                "tone": float(rng.uniform(25, 220)),
                "gradient": float(rng.uniform(0, 18)),
                "side": float(rng.integers(0, 4)),
            }
        elif cause == "blurred":
            v = {"sigma_frac": float(rng.uniform(0.012, 0.025))}
        elif cause == "moved":
            v = {
                "angle": float(rng.uniform(8, 15) * rng.choice([-1, 1])),
                "dx": float(rng.uniform(0.12, 0.25) * rng.choice([-1, 1])),
                "dy": float(rng.uniform(0.05, 0.15) * rng.choice([-1, 1])),
            }
        elif cause == "dark":
            v = {"gain": float(rng.uniform(0.08, 0.18)), "noise": float(rng.uniform(0.5, 2.0))}
        else:
            v = {}
        return TamperParams(cause, v)


def apply_tamper(
    frame: U8, params: TamperParams, *, frozen: U8 | None = None, noise_seed: int = 0
) -> U8:
    """Return ``frame`` (grey or BGR uint8) with the tamper applied."""
    v = params.values
    h, w = frame.shape[:2]
    rng = np.random.default_rng(noise_seed)
    if params.cause == "frozen":
        if frozen is None:
            raise ValueError("frozen needs the frame to repeat")
        return frozen
    if params.cause == "blurred":
        sigma = max(2.0, v["sigma_frac"] * w)
        return cast(U8, cv2.GaussianBlur(frame, (0, 0), sigma))
    if params.cause == "dark":
        f = frame.astype(np.float32) * v["gain"]
        f += rng.normal(0, v["noise"], f.shape).astype(np.float32)
        return cast(U8, np.clip(f, 0, 255).astype(np.uint8))
    if params.cause == "moved":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), v["angle"], 1.0)
        m[0, 2] += v["dx"] * w
        m[1, 2] += v["dy"] * h
        return cast(U8, cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT_101))
    # covered
    out = frame.copy()
    cov = v["coverage"]
    side = int(v["side"])
    if side in (0, 1):  # patch leaves a strip at the left or right
        pw, ph = round(w * cov), h
        x0 = 0 if side == 0 else w - pw
        y0 = 0
    else:  # strip at the top or bottom
        pw, ph = w, round(h * cov)
        x0 = 0
        y0 = 0 if side == 2 else h - ph
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    grad = v["gradient"] * (xx / max(pw, 1) + yy / max(ph, 1) - 1.0)
    patch = v["tone"] + grad + rng.normal(0, 1.5, (ph, pw)).astype(np.float32)
    patch_u8 = np.clip(patch, 0, 255).astype(np.uint8)
    if out.ndim == 3:
        tint = np.array([1.0, 0.97, 1.03], np.float32)
        out[y0 : y0 + ph, x0 : x0 + pw] = np.clip(patch[..., None] * tint, 0, 255).astype(np.uint8)
    else:
        out[y0 : y0 + ph, x0 : x0 + pw] = patch_u8
    return out


@dataclass(frozen=True, slots=True)
class TamperScenario:
    """A labelled clip: ``source`` frames from ``clip_start`` to ``clip_end`` (s), with
    ``cause`` applied in ``[start, end)`` (clip-relative seconds); ``cause=None`` is an
    untouched negative. Short sources are looped back and forth (ping-pong)."""

    name: str
    source: str
    duration: float
    cause: SyntheticCause | None = None
    start: float = 0.0
    end: float = 0.0
    seed: int = 0
    clip_start: float = 0.0
    #: a benign change applied in [start, end) of a negative (lights switched)
    perturbation: Perturbation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "duration": self.duration,
            "cause": self.cause,
            "start": self.start,
            "end": self.end,
            "seed": self.seed,
            "clip_start": self.clip_start,
            "perturbation": self.perturbation,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TamperScenario:
        return TamperScenario(
            name=str(d["name"]),
            source=str(d["source"]),
            duration=float(d["duration"]),
            cause=d.get("cause"),
            start=float(d.get("start", 0.0)),
            end=float(d.get("end", 0.0)),
            seed=int(d.get("seed", 0)),
            clip_start=float(d.get("clip_start", 0.0)),
            perturbation=d.get("perturbation"),
        )


def pingpong_index(i: int, n: int) -> int:
    """Index into ``n`` frames played forwards then backwards, repeatedly."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    k = i % period
    return k if k < n else period - k


def render_scenario(
    scenario: TamperScenario, frames: Sequence[U8], source_fps: float, fps: float = 5.0
) -> Iterator[tuple[float, U8]]:
    """Yield ``(ts, frame)`` of the scenario at ``fps`` from decoded ``frames``.

    ``frames`` are the source's frames at ``source_fps`` (all of them); the clip starts
    at ``clip_start`` seconds into the source and loops ping-pong when it runs out.
    """
    params = TamperParams.draw(scenario.cause, scenario.seed) if scenario.cause else None
    light = _lighting(scenario.seed) if scenario.perturbation == "lighting" else None
    n_out = math.floor(scenario.duration * fps + 1e-9)
    first = round(scenario.clip_start * source_fps)
    frozen: U8 | None = None
    for k in range(n_out):
        ts = k / fps
        idx = first + round(ts * source_fps)
        src = frames[idx] if idx < len(frames) else frames[pingpong_index(idx, len(frames))]
        if params is not None and scenario.start <= ts < scenario.end:
            if params.cause == "frozen" and frozen is None:
                frozen = src
            yield (
                ts,
                apply_tamper(src, params, frozen=frozen, noise_seed=scenario.seed * 100_003 + k),
            )
        elif light is not None and scenario.start <= ts < scenario.end:
            gain, offset = light
            yield ts, cast(U8, cv2.convertScaleAbs(src, alpha=gain, beta=offset))
        else:
            yield ts, src


def _lighting(seed: int) -> tuple[float, float]:
    """Lights switched off/on: a gain step (0.55-0.8 or 1.2-1.45) with a small offset."""
    rng = np.random.default_rng(seed + 7919)
    gain = float(rng.uniform(0.55, 0.8) if rng.integers(0, 2) else rng.uniform(1.2, 1.45))
    return gain, float(rng.uniform(-8, 8))
