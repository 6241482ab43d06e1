"""Released copies for outside parties and parents: the faces of everyone else blurred
irreversibly (optionally also the heads of people found by their shape: backs turned,
faces too small), optionally a watermark with the request number and recipient.

The redaction itself is the vision engine's (``vigil.vision.redact``): Haar cascades,
tracking over the whole clip in both directions, pixelate-then-blur. This module feeds it
a clip of any length without holding the clip in memory:

1. **Plan**: the clip is decoded once, scaled to ``detect_height`` (540 lines: a 1080p
   camera's faces of 20 px or more stay above the detector's 10 px minimum, at a quarter
   of the pixels), and handed to ``plan_redaction`` as a lazy sequence; the plan keeps
   only boxes.
2. **Apply**: the clip is decoded again at full size; each frame gets the plan's regions
   for its index (scaled up) through ``apply_plan``, then the watermark, and is encoded
   (``vigil.media.export.reencode``).

Frames are matched by their index in decoding order, which is the same in both passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.media.export import Frame, decode_frames, reencode


@dataclass(frozen=True)
class RedactionResult:
    frames: int
    tracks: int
    kept_tracks: int
    detect_height: int
    persons: bool
    watermark: bool

    def describe(self) -> dict[str, Any]:
        return {
            "method": "faces pixelated then blurred (irreversible)",
            "detector": "OpenCV Haar cascades (frontal, profile)"
            + (" + HOG people detector (head regions)" if self.persons else ""),
            "tracking": "linked across frames, gaps filled, carried before and after",
            "detect_height": self.detect_height,
            "frames": self.frames,
            "tracks": self.tracks,
            "kept_tracks": self.kept_tracks,
            "watermark": self.watermark,
        }


class _LazyClip(Sequence[Frame]):
    """A clip's frames, scaled for detection, decoded when iterated (never all held)."""

    def __init__(
        self, path: Path, count: int, height: int, progress: Callable[[int], None]
    ) -> None:
        self.path = path
        self.length = count
        self.height = height
        self.progress = progress
        self.seen = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: Any) -> Any:
        if index != 0:
            raise IndexError("only the first frame is read directly")
        for frame in decode_frames(self.path, height=self.height):
            return frame
        raise IndexError(0)

    def __iter__(self) -> Iterator[Frame]:
        self.seen = 0
        for frame in decode_frames(self.path, height=self.height):
            self.seen += 1
            self.progress(self.seen)
            yield frame


def _frame_plan(plan: Any, index: int, scale: float) -> Any:
    """The plan reduced to one frame (index 0), in full-size pixels."""
    from vigil.vision.redact import RedactionPlan, Track

    tracks = []
    for t in plan.tracks:
        box = t.boxes.get(index)
        if box is None:
            continue
        core = t.cores.get(index, box)
        tracks.append(
            Track(
                t.id,
                detections={0: tuple(v * scale for v in core)},
                boxes={0: tuple(v * scale for v in box)},
                cores={0: tuple(v * scale for v in core)},
            )
        )
    return RedactionPlan(
        width=round(plan.width * scale), height=round(plan.height * scale), frames=1, tracks=tracks
    )


def redact_clip(
    src: Path,
    out: Path,
    *,
    frames: int,
    fps: float,
    persons: bool = False,
    watermark_lines: Sequence[str] = (),
    keep: Sequence[Sequence[float]] = (),
    detect_height: int = 540,
    progress: Callable[[float], None] | None = None,
) -> RedactionResult:
    """Write the released copy of ``src`` to ``out``. ``frames`` is the number of
    presented frames of ``src``; ``keep`` lists faces to leave visible as (seconds from
    the clip's start, x, y) with x and y from 0 to 1 (a parent's own child)."""
    import cv2

    from vigil.vision.redact import RedactConfig, apply_plan, plan_redaction, track_at, watermark

    cv2.setNumThreads(1)
    report = progress or (lambda _f: None)
    total = max(1, frames)
    config = RedactConfig(persons=persons)
    lazy = _LazyClip(src, frames, detect_height, lambda n: report(0.5 * min(n, total) / total))
    plan = plan_redaction(lazy, config)
    if lazy.seen != frames and lazy.seen:
        lazy.length = lazy.seen  # the decoder gave another count: plan again on the truth
        plan = plan_redaction(lazy, config)
    kept: set[int] = set()
    for t, x, y in keep:
        index = min(max(0, round(t * fps)), max(0, plan.frames - 1))
        track = track_at(plan, index, x, y)
        if track is not None:
            kept.add(track)
    state: dict[str, float] = {}

    def transform(index: int, img: Frame) -> Frame:
        if "scale" not in state:
            state["scale"] = img.shape[0] / plan.height if plan.height else 1.0
        one = _frame_plan(plan, index, state["scale"])
        result: Frame = apply_plan([img], one, config, keep_tracks=kept)[0]
        if watermark_lines:
            result = watermark(result, list(watermark_lines))
        return result

    encoded = reencode(src, out, transform, progress=lambda n: report(0.5 + 0.5 * n / total))
    return RedactionResult(
        frames=encoded.frames,
        tracks=len(plan.tracks),
        kept_tracks=len(kept),
        detect_height=detect_height,
        persons=persons,
        watermark=bool(watermark_lines),
    )


def watermark_clip(
    src: Path,
    out: Path,
    *,
    frames: int,
    lines: Sequence[str],
    progress: Callable[[float], None] | None = None,
) -> int:
    """A copy with only the watermark burnt in (no redaction)."""
    from vigil.vision.redact import watermark

    total = max(1, frames)
    report = progress or (lambda _f: None)
    encoded = reencode(
        src,
        out,
        lambda _i, img: watermark(img, list(lines)),
        progress=lambda n: report(n / total),
    )
    return encoded.frames
