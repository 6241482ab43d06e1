"""Irreversible redaction of faces (and optionally people) for footage released to
outside parties or parents, plus a burned-in watermark.

Detection uses OpenCV's bundled Haar cascades (``cv2.data.haarcascades``): frontal
(default and alt2) and profile, the profile also on the mirrored frame so both
directions are found; small frames are upscaled 2x first so faces of ~12 px are found.
Optionally OpenCV's HOG people detector adds the head region of each person it finds.

Redaction is made robust to missed detections by tracking: detections are linked
into tracks across frames, gaps inside a track are filled by interpolation, and each
track is extended ``carry_frames`` before its first and after its last detection, its
box growing a little every frame it is carried. Offline redaction (:func:`plan_redaction`
+ :func:`apply_plan`, or :func:`redact_frames`) sees the whole clip, so it also covers
the frames *before* a face is first detected (a child entering the picture). The
streaming :class:`FaceRedactor` can only carry forward.

Each region (box grown by ``margin``) is pixelated to a few blocks and then blurred, so
no detail survives; the operation is destructive (no key, no reversible scrambling).

One track (the requester's own child) or a region can be left visible: see
``keep_tracks`` / ``keep_regions`` and :func:`track_at` to pick a track by a click.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from vigil.vision.imageops import U8, Box, box_iou, to_luma

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


@dataclass(frozen=True, slots=True)
class RedactConfig:
    #: frames lower than this are upscaled 2x for detection (small faces)
    upscale_below: int = 540
    scale_factor: float = 1.15
    min_neighbors: int = 3
    #: smallest face searched, in pixels of the original frame
    min_face: int = 10
    profile: bool = True
    #: also run the frontal "alt2" cascade (a little more recall, ~1.5x the time)
    second_frontal: bool = False
    #: run the detectors on every Nth frame only; tracking interpolates in between
    detect_every: int = 1
    #: run the (slow) profile cascades on every Nth detection frame only, coarser
    profile_every: int = 3
    profile_scale_factor: float = 1.2
    #: also find people with the HOG detector and redact their head region
    persons: bool = False
    #: region = box grown by this share of its size on every side
    margin: float = 0.45
    #: keep a track this many frames beyond its detections (both ways offline)
    carry_frames: int = 8
    #: carried boxes grow by this share per frame
    grow_per_frame: float = 0.03
    #: fill gaps inside a track up to this many frames
    max_gap: int = 12
    #: link a detection to a track when IoU >= this or the centre is this close
    link_iou: float = 0.2
    link_distance: float = 0.75  # in units of the track box size
    #: pixelation: the region is reduced to this many blocks across
    blocks: int = 5
    blur: bool = True


@dataclass(slots=True)
class Track:
    """A face (or head) followed across frames: ``boxes[i]`` in pixels (x0, y0, x1, y1)."""

    id: int
    detections: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    #: region redacted in each frame (detection, interpolated or carried, plus margin)
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    #: the same without the margin (the face itself)
    cores: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.detections)

    @property
    def last(self) -> int:
        return max(self.detections)


@dataclass(slots=True)
class RedactionPlan:
    """Tracks over a clip, in pixel coordinates of frames ``width`` x ``height``."""

    width: int
    height: int
    frames: int
    tracks: list[Track]

    def regions(self, index: int, keep_tracks: Iterable[int] = ()) -> list[Box]:
        keep = set(keep_tracks)
        return [t.boxes[index] for t in self.tracks if index in t.boxes and t.id not in keep]


class FaceDetector:
    """Haar cascades (frontal x2 + profile both ways), optional HOG people."""

    def __init__(self, config: RedactConfig | None = None) -> None:
        self.config = config or RedactConfig()
        base = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        names = ["haarcascade_frontalface_default.xml"]
        if self.config.second_frontal:
            names.append("haarcascade_frontalface_alt2.xml")
        self._frontal = [cv2.CascadeClassifier(str(base / n)) for n in names]
        self._profile = cv2.CascadeClassifier(str(base / "haarcascade_profileface.xml"))
        for c in [*self._frontal, self._profile]:
            if c.empty():  # pragma: no cover - the wheel always ships them
                raise RuntimeError("OpenCV Haar cascades are missing")
        self._hog: Any = None
        if self.config.persons:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())

    def detect(self, frame: U8, profile: bool = True) -> list[tuple[float, float, float, float]]:
        """Face (and head) boxes in pixels of ``frame``; ``profile=False`` skips the
        profile cascades for this frame."""
        cfg = self.config
        luma = to_luma(frame)
        h, w = luma.shape
        scale = 2.0 if h < cfg.upscale_below else 1.0
        img = (
            cast(U8, cv2.resize(luma, (w * 2, h * 2), interpolation=cv2.INTER_LINEAR))
            if scale != 1.0
            else luma
        )
        img = cast(U8, cv2.equalizeHist(img))
        min_size = max(12, round(cfg.min_face * scale))
        max_side = max(min_size + 1, img.shape[0] // 2)
        lo, hi = (min_size, min_size), (max_side, max_side)
        found: list[tuple[float, float, float, float]] = []

        def run(cascade: Any, image: U8, factor: float = cfg.scale_factor) -> list[list[int]]:
            rects = cascade.detectMultiScale(
                image, factor, cfg.min_neighbors, minSize=lo, maxSize=hi
            )
            return cast(list[list[int]], np.asarray(rects).reshape(-1, 4).tolist())

        def add(rects: list[list[int]], mirrored: bool = False) -> None:
            for x0, y, bw, bh in rects:
                x = img.shape[1] - x0 - bw if mirrored else x0
                found.append((x / scale, y / scale, (x + bw) / scale, (y + bh) / scale))

        for cascade in self._frontal:
            add(run(cascade, img))
        if cfg.profile and profile:
            pf = cfg.profile_scale_factor
            add(run(self._profile, img, pf))
            add(run(self._profile, cast(U8, cv2.flip(img, 1)), pf), mirrored=True)
        if self._hog is not None:
            # people are large enough at the original scale (the 64x128 window);
            # upscaling only adds false positives and time
            rects, _ = self._hog.detectMultiScale(luma, winStride=(8, 8), scale=1.05)
            for x, y, bw, bh in np.asarray(rects).reshape(-1, 4).tolist():
                # the head: the top ~22 % of a standing person, centred, padded
                hw = bw * 0.45
                cx = x + bw / 2
                found.append((cx - hw / 2, y + bh * 0.02, cx + hw / 2, y + bh * 0.24))
        return _merge(found)


def _merge(
    boxes: list[tuple[float, float, float, float]],
) -> list[tuple[float, float, float, float]]:
    """Merge overlapping detections of the same face from several cascades."""
    out: list[tuple[float, float, float, float]] = []
    for b in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        for i, o in enumerate(out):
            if box_iou(b, o) > 0.3 or _contains(o, b):
                out[i] = (min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3]))
                break
        else:
            out.append(b)
    return out


def _contains(outer: tuple[float, ...], inner: tuple[float, ...]) -> bool:
    cx = (inner[0] + inner[2]) / 2
    cy = (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def _center_distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    size = max(a[2] - a[0], a[3] - a[1], 1.0)
    dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2
    dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2
    return float(np.hypot(dx, dy)) / size


def _grow(b: tuple[float, float, float, float], k: float) -> tuple[float, float, float, float]:
    w, h = b[2] - b[0], b[3] - b[1]
    return (b[0] - w * k, b[1] - h * k, b[2] + w * k, b[3] + h * k)


def link_tracks(
    detections: Sequence[list[tuple[float, float, float, float]]], config: RedactConfig
) -> list[Track]:
    """Greedy frame-to-frame linking of detections into tracks."""
    tracks: list[Track] = []
    open_tracks: list[Track] = []
    next_id = 1
    for i, dets in enumerate(detections):
        open_tracks = [t for t in open_tracks if i - t.last <= config.max_gap]
        unmatched = list(dets)
        pairs = []
        for t in open_tracks:
            last_box = t.detections[t.last]
            for j, d in enumerate(unmatched):
                iou = box_iou(last_box, d)
                dist = _center_distance(last_box, d)
                if iou >= config.link_iou or dist <= config.link_distance:
                    pairs.append((iou - dist, t.id, j))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_d: set[int] = set()
        by_id = {t.id: t for t in open_tracks}
        for _score, tid, j in pairs:
            if tid in used_t or j in used_d:
                continue
            used_t.add(tid)
            used_d.add(j)
            by_id[tid].detections[i] = unmatched[j]
        for j, d in enumerate(unmatched):
            if j not in used_d:
                t = Track(next_id, {i: d})
                next_id += 1
                tracks.append(t)
                open_tracks.append(t)
    return tracks


def _fill(track: Track, n_frames: int, config: RedactConfig, width: int, height: int) -> None:
    idx = sorted(track.detections)
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for a, b in itertools.pairwise(idx):
        ba, bb = track.detections[a], track.detections[b]
        for k in range(a, b):
            t = (k - a) / (b - a)
            boxes[k] = cast(
                tuple[float, float, float, float],
                tuple(ba[m] + (bb[m] - ba[m]) * t for m in range(4)),
            )
    boxes[idx[-1]] = track.detections[idx[-1]]
    first, last = idx[0], idx[-1]
    vel = _velocity(track)
    # a lone detection is more often a false positive: carry it briefly, without growth
    carry = config.carry_frames if len(idx) > 1 else min(2, config.carry_frames)
    grow = config.grow_per_frame if len(idx) > 1 else 0.0
    for k in range(1, carry + 1):
        for frame, anchor, sign in ((first - k, first, -1), (last + k, last, 1)):
            if 0 <= frame < n_frames:
                ab = track.detections[anchor]
                dx, dy = vel[0] * k * sign, vel[1] * k * sign
                moved = (ab[0] + dx, ab[1] + dy, ab[2] + dx, ab[3] + dy)
                boxes[frame] = _grow(moved, grow * k)
    track.cores = {k: b for k, b in boxes.items() if _visible(b, width, height)}
    track.boxes = {k: _grow(b, config.margin) for k, b in track.cores.items()}


def _visible(b: tuple[float, ...], width: int, height: int) -> bool:
    return b[2] > 0 and b[3] > 0 and b[0] < width and b[1] < height


def _velocity(track: Track) -> tuple[float, float]:
    idx = sorted(track.detections)
    if len(idx) < 2:
        return (0.0, 0.0)
    a, b = idx[0], idx[-1]
    ba, bb = track.detections[a], track.detections[b]
    n = b - a
    return (
        ((bb[0] + bb[2]) - (ba[0] + ba[2])) / 2 / n,
        ((bb[1] + bb[3]) - (ba[1] + ba[3])) / 2 / n,
    )


def plan_redaction(
    frames: Sequence[U8],
    config: RedactConfig | None = None,
    detector: FaceDetector | None = None,
) -> RedactionPlan:
    """Detect and track faces over a whole clip (offline, both directions)."""
    cfg = config or RedactConfig()
    det = detector or FaceDetector(cfg)
    if not frames:
        return RedactionPlan(0, 0, 0, [])
    h, w = frames[0].shape[:2]
    step = max(1, cfg.detect_every)
    pstep = step * max(1, cfg.profile_every)
    detections = [
        det.detect(f, profile=i % pstep == 0) if i % step == 0 else [] for i, f in enumerate(frames)
    ]
    tracks = link_tracks(detections, cfg)
    for t in tracks:
        _fill(t, len(frames), cfg, w, h)
    return RedactionPlan(width=w, height=h, frames=len(frames), tracks=tracks)


def track_at(plan: RedactionPlan, index: int, x: float, y: float) -> int | None:
    """Id of the track whose region contains normalised point (x, y) in frame ``index``
    (the operator clicks on the requester's child)."""
    px, py = x * plan.width, y * plan.height
    best: tuple[float, int] | None = None
    for t in plan.tracks:
        b = t.boxes.get(index)
        if b and b[0] <= px <= b[2] and b[1] <= py <= b[3]:
            area = (b[2] - b[0]) * (b[3] - b[1])
            if best is None or area < best[0]:
                best = (area, t.id)
    return None if best is None else best[1]


def obscure(frame: U8, box: tuple[float, float, float, float], config: RedactConfig) -> None:
    """Pixelate then blur ``box`` (pixels) of ``frame`` in place."""
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = frame[y0:y1, x0:x1]
    bw = max(1, config.blocks)
    bh = max(1, round(config.blocks * (y1 - y0) / (x1 - x0)))
    small = cv2.resize(roi, (bw, bh), interpolation=cv2.INTER_AREA)
    pix = cast(U8, cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST))
    if config.blur:
        sigma = max(1.0, (x1 - x0) / bw / 2)
        pix = cast(U8, cv2.GaussianBlur(pix, (0, 0), sigma))
    roi[...] = pix


def apply_plan(
    frames: Sequence[U8],
    plan: RedactionPlan,
    config: RedactConfig | None = None,
    *,
    keep_tracks: Iterable[int] = (),
    keep_regions: Sequence[Box] = (),
) -> list[U8]:
    """Redacted copies of ``frames``. Faces whose centre lies in a ``keep_regions`` box
    (normalised) and tracks in ``keep_tracks`` stay visible."""
    cfg = config or RedactConfig()
    keep = set(keep_tracks)
    out = []
    for i, frame in enumerate(frames):
        img = frame.copy()
        kept = [t.cores[i] for t in plan.tracks if t.id in keep and i in t.cores]
        for t in plan.tracks:
            b = t.boxes.get(i)
            if b is None or t.id in keep:
                continue
            if keep_regions and _in_regions(b, keep_regions, plan.width, plan.height):
                continue
            core = t.cores.get(i)
            if core is not None and any(_contains(k, core) for k in kept):
                continue  # a duplicate detection of the kept face (another cascade)
            obscure(img, b, cfg)
        h, w = img.shape[:2]
        for k in kept:  # a neighbour's margin must not cover the kept face
            x0, y0 = max(0, int(k[0])), max(0, int(k[1]))
            x1, y1 = min(w, int(np.ceil(k[2]))), min(h, int(np.ceil(k[3])))
            img[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        out.append(img)
    return out


def _in_regions(b: tuple[float, ...], regions: Sequence[Box], width: int, height: int) -> bool:
    cx = (b[0] + b[2]) / 2 / width
    cy = (b[1] + b[3]) / 2 / height
    return any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in regions)


def redact_frames(
    frames: Sequence[U8],
    config: RedactConfig | None = None,
    *,
    keep_tracks: Iterable[int] = (),
    keep_regions: Sequence[Box] = (),
) -> list[U8]:
    """Plan and apply in one go (offline)."""
    cfg = config or RedactConfig()
    plan = plan_redaction(frames, cfg)
    return apply_plan(frames, plan, cfg, keep_tracks=keep_tracks, keep_regions=keep_regions)


class FaceRedactor:
    """Streaming redaction (forward-only carry), one frame at a time."""

    def __init__(self, config: RedactConfig | None = None) -> None:
        self.config = config or RedactConfig()
        self._det = FaceDetector(self.config)
        self._tracks: list[tuple[tuple[float, float, float, float], int]] = []  # box, age
        self._n = 0

    def process(self, frame: U8, keep_regions: Sequence[Box] = ()) -> U8:
        cfg = self.config
        h, w = frame.shape[:2]
        dets = self._det.detect(frame, profile=self._n % max(1, cfg.profile_every) == 0)
        self._n += 1
        new: list[tuple[tuple[float, float, float, float], int]] = [(d, 0) for d in dets]
        for box, age in self._tracks:
            if age + 1 > cfg.carry_frames:
                continue
            if any(box_iou(box, d) > 0.1 or _center_distance(box, d) < 0.75 for d in dets):
                continue
            new.append((_grow(box, cfg.grow_per_frame), age + 1))
        self._tracks = new
        out = frame.copy()
        for box, _age in new:
            region = _grow(box, cfg.margin)
            if keep_regions and _in_regions(region, keep_regions, w, h):
                continue
            obscure(out, region, cfg)
        return out


# ---------------------------------------------------------------------------------
# Watermark


def _ascii_fold(text: str) -> str:
    """Vietnamese to plain ASCII for OpenCV's Hershey fonts (d-stroke included)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    norm = unicodedata.normalize("NFKD", text)
    return "".join(c for c in norm if not unicodedata.combining(c) and ord(c) < 128)


def _font_path() -> str | None:
    for p in _FONT_CANDIDATES:
        if Path(p).is_file():
            return p
    return None


def watermark(
    frame: U8,
    lines: Sequence[str],
    *,
    position: str = "bottom-left",
    tiled: bool = True,
    opacity: float = 0.85,
) -> U8:
    """Burn ``lines`` (e.g. request number, recipient, date) into a copy of ``frame``.

    A label box goes in a corner; with ``tiled`` the first line is also repeated faintly
    across the picture so that cropping the corner does not remove it. Vietnamese text is
    drawn with a TrueType font (DejaVu) through Pillow when available, else folded to
    ASCII for OpenCV's built-in font.
    """
    img = frame if frame.ndim == 3 else cast(U8, cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    img = img.copy()
    h, w = img.shape[:2]
    size = max(10, round(h / 28))
    font = _font_path()
    try:
        from PIL import ImageFont

        pil_font: Any = ImageFont.truetype(font, size) if font else None
    except ImportError:  # pragma: no cover - Pillow comes with fpdf2
        pil_font = None
    if tiled and lines:
        overlay = img.copy()
        step_x, step_y = max(200, w // 3), max(80, h // 4)
        text = _ascii_fold(lines[0]) if pil_font is None else lines[0]
        for yy in range(step_y // 2, h, step_y):
            for xx in range(-step_x // 2 + (yy // step_y % 2) * step_x // 2, w, step_x):
                _draw_text(overlay, text, (xx, yy), size, pil_font)
        img = cast(U8, cv2.addWeighted(overlay, 0.18, img, 0.82, 0))
    if lines:
        pad = max(4, size // 3)
        line_h = round(size * 1.3)
        texts = list(lines) if pil_font is not None else [_ascii_fold(t) for t in lines]
        width_px = max(_text_width(t, size, pil_font) for t in texts) + 2 * pad
        box_h = line_h * len(texts) + 2 * pad
        x0 = pad if "left" in position else max(0, w - width_px - pad)
        y0 = pad if "top" in position else max(0, h - box_h - pad)
        x1, y1 = min(w, x0 + width_px), min(h, y0 + box_h)
        roi = img[y0:y1, x0:x1]
        roi[...] = (roi.astype(np.float32) * (1 - opacity)).astype(np.uint8)
        for k, t in enumerate(texts):
            _draw_text(img, t, (x0 + pad, y0 + pad + k * line_h), size, pil_font)
    return img


def _text_width(text: str, size: int, pil_font: Any) -> int:
    if pil_font is not None:
        left, _top, right, _bottom = pil_font.getbbox(text)
        return int(right - left)
    (tw, _th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size / 30, 1)
    return int(tw)


def _draw_text(
    img: U8,
    text: str,
    org: tuple[int, int],
    size: int,
    pil_font: Any,
    *,
    color: tuple[int, int, int] = (255, 255, 255),
) -> None:
    if pil_font is None:
        cv2.putText(
            img,
            text,
            (org[0], org[1] + size),
            cv2.FONT_HERSHEY_SIMPLEX,
            size / 30,
            color,
            max(1, size // 14),
            cv2.LINE_AA,
        )
        return
    from PIL import Image, ImageDraw

    left, top, right, bottom = pil_font.getbbox(text)
    tw, th = int(right - left) + 2, int(bottom - top) + 4
    x, y = org
    h, w = img.shape[:2]
    xa, ya = max(0, x), max(0, y)
    xb, yb = min(w, x + tw), min(h, y + th)
    if xb <= xa or yb <= ya:
        return
    patch = Image.fromarray(np.ascontiguousarray(img[ya:yb, xa:xb, ::-1]))
    draw = ImageDraw.Draw(patch)
    draw.text((x - xa - left, y - ya - top), text, font=pil_font, fill=color[::-1])
    img[ya:yb, xa:xb] = np.asarray(patch)[:, :, ::-1]
