"""Camera tamper detection: covered/sprayed, defocused, moved, too dark, frozen, video lost.

How it decides (all on the ~100 px high luma frame, see :func:`vigil.vision.imageops.halve`):

* A **reference** of what the camera normally sees is the per-pixel median of a ring of
  samples (9 by default) taken every 2 s while learning, then every 20 s, and only while
  nothing looks wrong. The median ignores whatever passes through (people, cars) and
  the reference follows slow changes (daylight) over a few minutes. It is saved and
  loaded with :meth:`TamperDetector.save_state` / :meth:`TamperDetector.load_state`.
* Once a second of stream time (``check_interval``) the frame is compared with the
  reference on a grid of blocks (8 x 6), leaving out blocks that changed since the last
  check (something is moving there):

  - ``detail``: median, over blocks that have texture in the reference, of the ratio
    of fine detail (std of a band-pass: 3x3 box minus 9x9 box) to the reference's,
    divided by the block's contrast change so that dimming alone does not look like blur;
  - ``texture``: the 70th percentile of fine detail over all blocks against the
    reference's, wherever it is (a turned camera keeps it, a cover or blur loses it);
  - ``coarse match``: share of structured blocks whose coarse picture (9x9 box blur)
    still correlates (ZNCC > 0.7) with the reference's. Correlation ignores gain and
    offset, so lights switched on or off and auto exposure keep it high;
  - ``mean`` brightness against an absolute floor and the reference's.

  covered = coarse match < 0.45 and texture < 0.3 (or a dark frame that no longer
  correlates with the reference: a hand or cloth); moved = coarse match < 0.45 with
  texture present; blurred = detail < 0.6 while the coarse structure still matches;
  dark = mean < 35 and < half the reference's (or < 12) while the structure still
  correlates. A near-uniform frame is reported as covered even without a reference
  (camera already covered at start-up). All per-block statistics come from exact
  area resizes of x and x^2 (a check costs ~0.3 ms, once a second).
* **Frozen**: every frame is compared with the previous one; identical frames (max
  difference <= 2 levels and mean difference <= 0.05 at 1/4 scale) for ``freeze_after``
  seconds. Real cameras never do that: compression and sensor noise change some pixels,
  and every keyframe re-codes the whole picture.
* **Video lost**: the caller drives :meth:`TamperDetector.check_signal` with the current
  time (same clock as the frame timestamps); no frame for ``lost_after`` seconds.

Hysteresis: a run of consecutive "something is wrong" checks raises one alert after the
``raise_after`` delay of the cause seen most often in the run (a cover can look "moved"
on a single check), and it clears after ``clear_after`` seconds without any cause. A
different cause that persists for its own delay replaces the alert. Checks that cannot
decide (too few usable blocks, e.g. everything moves) neither advance nor reset a run.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt

from vigil.vision.imageops import F32, U8, encode_jpeg, halve, halvings_for, to_luma

TamperCause = Literal["covered", "blurred", "moved", "dark", "frozen", "video_lost"]
Severity = Literal["warning", "critical"]
TAMPER_CAUSES: tuple[TamperCause, ...] = (
    "covered",
    "blurred",
    "moved",
    "dark",
    "frozen",
    "video_lost",
)
_IMAGE_CAUSES: tuple[TamperCause, ...] = ("covered", "moved", "dark", "blurred")
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class TamperConfig:
    """Thresholds and timings (seconds of stream time)."""

    target_height: int = 100
    grid: tuple[int, int] = (8, 6)  # blocks across, down
    check_interval: float = 1.0
    # reference ring
    ref_samples: int = 9
    ref_learn_interval: float = 2.0
    ref_interval: float = 20.0
    ref_min_samples: int = 3
    # block selection
    fine_info: float = 1.0  # min std of the band-pass in a reference block
    coarse_info: float = 2.0  # min std of the coarse picture in a reference block
    moving_block: float = 7.5  # std of the change since the last check that marks a block busy
    min_blocks: int = 4
    # decisions
    detail_lost: float = 0.3  # covered: texture below this share of the reference
    detail_blurred: float = 0.6  # blurred: sharpness below this share ...
    coarse_kept: float = 0.45  # ... while this share of the coarse structure still matches
    coarse_lost: float = 0.45  # moved/covered: coarse match below this
    zncc_match: float = 0.7  # a block "matches" the reference when its ZNCC exceeds this
    dark_cover_match: float = 0.3  # dark frame matching less than this: covered, not dark
    uniform_std: float = 3.0  # a block this flat (levels) is "uniform"
    uniform_share: float = 0.9  # covered without reference: this share of blocks uniform
    dark_level: float = 35.0  # mean luma below this ...
    dark_ratio: float = 0.5  # ... and below this share of the reference mean
    dark_floor: float = 12.0  # mean below this is dark whatever the reference
    freeze_max_diff: float = 2.0
    freeze_mean_diff: float = 0.05
    # a keyframe re-codes the same picture a little differently (measured on frozen
    # input through x264 at 450 kbit/s: max <= 2, mean 0.04-0.4): across a keyframe
    # only the max matters, or a frozen camera would never stay "frozen" for 5 s
    freeze_keyframe_mean_diff: float = 0.6
    freeze_after: float = 5.0
    lost_after: float = 10.0
    # hysteresis
    raise_after: dict[str, float] = field(
        default_factory=lambda: {"covered": 3.0, "moved": 4.0, "blurred": 5.0, "dark": 5.0}
    )
    clear_after: float = 5.0
    # snapshots
    snapshot_interval: float = 30.0
    snapshot_width: int = 640
    snapshot_quality: int = 80

    def raise_delay(self, cause: str) -> float:
        return self.raise_after.get(cause, 4.0)


SEVERITY: dict[TamperCause, Severity] = {
    "covered": "critical",
    "moved": "critical",
    "frozen": "critical",
    "video_lost": "critical",
    "blurred": "warning",
    "dark": "warning",
}


@dataclass(slots=True)
class TamperAlert:
    """One tamper alert. ``ended_at`` is None while it is active."""

    cause: TamperCause
    severity: Severity
    started_at: float  # when the condition was first seen
    raised_at: float  # when the alert was raised (after hysteresis)
    ended_at: float | None = None
    snapshot_before: bytes | None = None  # JPEG of the last good view
    snapshot_after: bytes | None = None  # JPEG of the picture when raised
    details: dict[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class TamperEvent:
    kind: Literal["raised", "cleared"]
    alert: TamperAlert


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Measurements of one periodic check (exposed for evaluation and debugging)."""

    ts: float
    candidate: TamperCause | None
    mean: float
    detail: float
    texture: float
    coarse_match: float
    uniform_share: float
    usable_blocks: int
    reference_samples: int


@dataclass(slots=True)
class _Reference:
    small: F32
    coarse: F32  # 9x9 box blur of the (block-cropped) reference
    coarse_mean: F32  # per block, shape (gy, gx)
    coarse_std: F32
    fine_std: F32
    fine_p70: float
    fine_info: npt.NDArray[np.bool_]
    coarse_info: npt.NDArray[np.bool_]
    mean: float


def _crop(img: F32, gx: int, gy: int) -> F32:
    h, w = img.shape[:2]
    return img[: h - h % gy, : w - w % gx]


def _block_mean(img: F32, gx: int, gy: int) -> F32:
    """Per-block means, (gy, gx): an exact area resize of a block-cropped image."""
    return cast(F32, cv2.resize(img, (gx, gy), interpolation=cv2.INTER_AREA))


def _block_std(img: F32, gx: int, gy: int) -> tuple[F32, F32]:
    """Per-block (mean, std) from E[x] and E[x^2] (two area resizes, ~10 us)."""
    m = _block_mean(img, gx, gy)
    m2 = _block_mean(cast(F32, cv2.multiply(img, img)), gx, gy)
    return m, cast(F32, np.sqrt(np.maximum(m2 - m * m, 0.0)))


def _quantile(values: npt.NDArray[Any], q: float) -> float:
    flat = np.sort(values, axis=None)  # a few dozen values: cheaper than np.partition
    return float(flat[round(q * (flat.size - 1))])


class TamperDetector:
    """Tamper detector for one camera (not thread-safe)."""

    def __init__(self, config: TamperConfig | None = None) -> None:
        self.config = config or TamperConfig()
        self._halvings: int | None = None
        self._small_shape: tuple[int, int] | None = None
        self._ring: list[U8] = []
        self._ref: _Reference | None = None
        self._last_sample: float | None = None
        self._prev_small: U8 | None = None
        self._prev_check_small: F32 | None = None
        self._next_check: float | None = None
        self._last_ts: float | None = None
        self._prev_ts: float | None = None
        self._still_since: float | None = None
        self._frozen_ok_since: float | None = None
        self._run_since: float | None = None
        self._run_counts: dict[TamperCause, int] = {}
        self._none_since: float | None = None
        self._switch: tuple[TamperCause, float] | None = None
        self._image_alert: TamperAlert | None = None
        self._alerts: dict[TamperCause, TamperAlert] = {}
        self._history: list[TamperAlert] = []
        self._snapshots: list[tuple[float, bytes]] = []
        self._last_snapshot: float | None = None
        self._lost_watch: float | None = None
        self.last_check: CheckResult | None = None

    # -- public API -----------------------------------------------------------------
    @property
    def all_alerts(self) -> list[TamperAlert]:
        """Every alert raised by this detector, in order (for evaluation and logs)."""
        return list(self._history)

    @property
    def active_alerts(self) -> list[TamperAlert]:
        return [a for a in self._alerts.values() if a.active]

    @property
    def learning(self) -> bool:
        """True until the reference holds ``ref_min_samples`` samples."""
        return len(self._ring) < self.config.ref_min_samples

    def small(self, luma: U8) -> U8:
        if self._halvings is None:
            self._halvings = halvings_for(luma.shape[0], self.config.target_height)
        return halve(luma, self._halvings)

    def update(
        self, frame: U8, ts: float, small: U8 | None = None, *, keyframe: bool = False
    ) -> list[TamperEvent]:
        """Feed one frame (grey or BGR) at stream time ``ts``; returns raised/cleared events.

        ``small`` may pass the frame already halved to ~``target_height`` (shared with the
        motion detector); it must be the same size for every call. ``keyframe`` says the
        decoder produced it from a keyframe (see ``freeze_keyframe_mean_diff``).
        """
        cfg = self.config
        events: list[TamperEvent] = []
        if small is None:
            small = self.small(to_luma(frame))
        if self._small_shape is not None and small.shape != self._small_shape:
            # resolution changed (camera reconfigured): start the reference over
            self._reset_reference()
        self._small_shape = (int(small.shape[0]), int(small.shape[1]))
        if self._last_ts is not None and ts + 1.0 < self._last_ts:
            # timestamps went back: a new stream; keep the reference, restart timers
            self._next_check = None
            self._still_since = None
            self._prev_small = None
            self._prev_check_small = None
            self._last_sample = None
            self._last_snapshot = None
            self._run_since = None
            self._none_since = None
            self._switch = None
        self._prev_ts = self._last_ts
        self._last_ts = ts
        self._lost_watch = ts

        # video came back
        lost = self._alerts.get("video_lost")
        if lost is not None and lost.active:
            events.append(self._clear("video_lost", ts))

        events.extend(self._check_frozen(frame, small, ts, keyframe))

        if self._next_check is None or ts >= self._next_check:
            self._next_check = ts + cfg.check_interval
            events.extend(self._check(frame, small, ts))
        return events

    def check_signal(self, now: float) -> list[TamperEvent]:
        """Call periodically (e.g. every second) with the current time on the frames'
        clock; raises ``video_lost`` when no frame arrived for ``lost_after`` seconds."""
        if self._lost_watch is None:
            self._lost_watch = now
            return []
        lost = self._alerts.get("video_lost")
        if (lost is None or not lost.active) and now - self._lost_watch >= self.config.lost_after:
            alert = TamperAlert(
                cause="video_lost",
                severity=SEVERITY["video_lost"],
                started_at=self._lost_watch,
                raised_at=now,
                snapshot_before=self._before_snapshot(self._lost_watch),
                details={"silence_s": now - self._lost_watch},
            )
            self._alerts["video_lost"] = alert
            self._history.append(alert)
            return [TamperEvent("raised", alert)]
        return []

    def accept_view(self) -> list[TamperEvent]:
        """The current view is the new normal (camera re-aimed on purpose): relearn the
        reference from the next frames and clear image alerts."""
        ts = self._last_ts if self._last_ts is not None else 0.0
        events = [self._clear(c, ts) for c in list(self._alerts) if self._alerts[c].active]
        self._reset_reference()
        return events

    def flush(self, ts: float) -> list[TamperEvent]:
        """Close all active alerts (camera removed or analysis stopped)."""
        return [self._clear(c, ts) for c in list(self._alerts) if self._alerts[c].active]

    # -- state ----------------------------------------------------------------------
    def save_state(self) -> bytes:
        """The learned reference and last good snapshot, as compact bytes (npz)."""
        meta = {
            "version": _STATE_VERSION,
            "small_shape": list(self._small_shape) if self._small_shape else None,
            "halvings": self._halvings,
            "snapshots": len(self._snapshots),
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
        }
        if self._ring:
            arrays["ring"] = np.stack(self._ring).astype(np.uint8)
        for i, (_, jpeg) in enumerate(self._snapshots):
            arrays[f"snap{i}"] = np.frombuffer(jpeg, np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    def load_state(self, data: bytes) -> None:
        """Restore what :meth:`save_state` saved (ignores incompatible state)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("version") != _STATE_VERSION:
                return
            shape = meta.get("small_shape")
            self._small_shape = (int(shape[0]), int(shape[1])) if shape else None
            self._halvings = meta.get("halvings")
            self._ring = [np.ascontiguousarray(r) for r in z["ring"]] if "ring" in z else []
            self._snapshots = [
                (-math.inf, bytes(z[f"snap{i}"])) for i in range(int(meta.get("snapshots", 0)))
            ]
        self._ref = self._build_reference() if self._ring else None
        self._last_sample = None

    # -- internals ------------------------------------------------------------------
    def _reset_reference(self) -> None:
        self._ring = []
        self._ref = None
        self._last_sample = None
        self._prev_check_small = None
        self._run_since = None
        self._none_since = None
        self._switch = None

    def _check_frozen(
        self, frame: U8, small: U8, ts: float, keyframe: bool = False
    ) -> list[TamperEvent]:
        cfg = self.config
        prev = self._prev_small
        self._prev_small = small
        gap = self._prev_ts is not None and ts - self._prev_ts > cfg.freeze_after / 2
        if prev is None or prev.shape != small.shape or gap:
            # a pause in the stream is video loss, not a frozen picture
            self._still_since = None
            return []
        max_diff = float(cv2.norm(small, prev, cv2.NORM_INF))
        mean_limit = cfg.freeze_keyframe_mean_diff if keyframe else cfg.freeze_mean_diff
        still = max_diff <= cfg.freeze_max_diff and (
            max_diff == 0.0 or cv2.norm(small, prev, cv2.NORM_L1) / small.size <= mean_limit
        )
        alert = self._alerts.get("frozen")
        active = alert is not None and alert.active
        if still:
            if self._still_since is None:
                # the run of identical frames began with the previous frame
                self._still_since = self._prev_ts if self._prev_ts is not None else ts
            self._frozen_ok_since = None
            if not active and ts - self._still_since >= cfg.freeze_after:
                return [
                    self._raise(
                        "frozen", self._still_since, ts, frame, {"still_s": ts - self._still_since}
                    )
                ]
            return []
        self._still_since = None
        if active:
            if self._frozen_ok_since is None:
                self._frozen_ok_since = ts
            if ts - self._frozen_ok_since >= min(cfg.clear_after, 2.0):
                return [self._clear("frozen", ts)]
        return []

    def _check(self, frame: U8, small: U8, ts: float) -> list[TamperEvent]:
        cfg = self.config
        events: list[TamperEvent] = []
        gx, gy = cfg.grid
        sf = _crop(small.astype(np.float32), gx, gy)
        ref = self._ref

        # busy blocks: their content changed since the previous check (the std of the
        # change ignores a change of the block's mean: auto exposure, lights)
        prev = self._prev_check_small
        self._prev_check_small = sf
        if prev is not None and prev.shape == sf.shape:
            busy = _block_std(cast(F32, cv2.subtract(sf, prev)), gx, gy)[1] > cfg.moving_block
        else:
            busy = np.zeros((gy, gx), bool)

        coarse = cast(F32, cv2.blur(sf, (9, 9)))
        fine = cast(F32, cv2.subtract(cv2.blur(sf, (3, 3)), coarse))
        block_mean, block_std = _block_std(sf, gx, gy)
        mean = float(block_mean.mean())
        uniform = float((block_std < cfg.uniform_std).mean())

        detail = math.nan
        cmatch = math.nan
        texture = math.nan
        usable = 0
        candidate: TamperCause | None = None
        if ref is not None and ref.coarse.shape == coarse.shape:
            fstd = _block_std(fine, gx, gy)[1]
            cmean, cstd = _block_std(coarse, gx, gy)
            gain = max(mean, 4.0) / max(ref.mean, 4.0)
            # texture: how much fine detail the frame has, wherever it is (a camera
            # turned to another part of the room keeps it, a cover or blur loses it)
            texture = _quantile(fstd, 0.7) / max(ref.fine_p70, 0.2)
            csel = ref.coarse_info & ~busy
            usable = int(csel.sum())
            contrast = gain
            if usable >= cfg.min_blocks:
                # zero-normalised cross-correlation of each block's coarse picture
                cross = _block_mean(cast(F32, cv2.multiply(coarse, ref.coarse)), gx, gy)
                cov = cross - cmean * ref.coarse_mean
                zncc = cov[csel] / (cstd[csel] * ref.coarse_std[csel] + 1e-3)
                cmatch = float((zncc > cfg.zncc_match).mean())
                ratios = cstd[csel] / (ref.coarse_std[csel] + 1e-3)
                contrast = _quantile(ratios, 0.5)
            fsel = ref.fine_info & ~busy
            if int(fsel.sum()) >= cfg.min_blocks:
                # sharpness in place, relative to the local contrast change
                ratio = fstd[fsel] / (ref.fine_std[fsel] + 1e-3) / max(contrast, 0.05)
                detail = _quantile(ratio, 0.5)
            candidate = self._decide(
                mean=mean,
                ref_mean=ref.mean,
                detail=detail,
                texture=texture,
                cmatch=cmatch,
                uniform=uniform,
            )
        elif uniform >= cfg.uniform_share:
            candidate = "covered"
        elif mean < cfg.dark_floor:
            candidate = "dark"

        self.last_check = CheckResult(
            ts=ts,
            candidate=candidate,
            mean=mean,
            detail=detail,
            texture=texture,
            coarse_match=cmatch,
            uniform_share=uniform,
            usable_blocks=usable,
            reference_samples=len(self._ring),
        )
        undecided = (
            ref is not None and candidate is None and math.isnan(cmatch) and math.isnan(detail)
        )
        details = {
            "mean": mean,
            "detail": detail,
            "texture": texture,
            "coarse_match": cmatch,
            "uniform": uniform,
        }
        if ref is not None:
            details["reference_mean"] = ref.mean
        events.extend(self._hysteresis(candidate, undecided, ts, frame, details))

        # learn: only while nothing at all looks wrong
        frozen_run = self._still_since is not None and ts - self._still_since >= 1.0
        calm = candidate is None and not undecided and not frozen_run and not self.active_alerts
        if calm:
            self._maybe_sample(small, ts)
            self._maybe_snapshot(frame, ts)
        return events

    def _decide(
        self,
        *,
        mean: float,
        ref_mean: float,
        detail: float,
        texture: float,
        cmatch: float,
        uniform: float,
    ) -> TamperCause | None:
        cfg = self.config
        has_d = not math.isnan(detail)
        has_c = not math.isnan(cmatch)
        dark = mean < cfg.dark_floor or (mean < cfg.dark_level and mean < cfg.dark_ratio * ref_mean)
        lost = has_c and cmatch < cfg.coarse_lost
        if lost and texture < cfg.detail_lost:
            return "covered"
        if uniform >= cfg.uniform_share and not has_c:
            return "covered"
        if dark:
            if has_c and cmatch < cfg.dark_cover_match:
                return "covered"
            return "dark"
        if lost:
            return "moved"
        if has_d and detail < cfg.detail_blurred and (not has_c or cmatch >= cfg.coarse_kept):
            return "blurred"
        return None

    def _hysteresis(
        self,
        candidate: TamperCause | None,
        undecided: bool,
        ts: float,
        frame: U8,
        details: dict[str, float],
    ) -> list[TamperEvent]:
        """One run of consecutive "something is wrong" checks raises one alert, with the
        cause seen most often in the run (covered and moved, or dark and covered, can
        alternate on the same tamper). A different cause that persists for its own delay
        replaces the alert (e.g. a film of spray thickening from blurred to covered)."""
        cfg = self.config
        if undecided:
            return []
        events: list[TamperEvent] = []
        alert = self._image_alert
        if candidate is None:
            if self._none_since is None:
                self._none_since = ts
            quiet = ts - self._none_since
            if alert is not None:
                if quiet >= cfg.clear_after:
                    events.append(self._clear(alert.cause, ts))
                    self._image_alert = None
                    self._run_since = None
            elif quiet >= 1.5 * cfg.check_interval:
                self._run_since = None  # one quiet check is tolerated, two end the run
            self._switch = None
            return events
        self._none_since = None
        if self._run_since is None:
            self._run_since = ts
            self._run_counts = {}
        self._run_counts[candidate] = self._run_counts.get(candidate, 0) + 1
        if alert is None:
            cause = max(
                self._run_counts,
                key=lambda c: (self._run_counts[c], -_IMAGE_CAUSES.index(c)),
            )
            if ts - self._run_since >= cfg.raise_delay(cause):
                self._image_alert = self._raise_alert(cause, self._run_since, ts, frame, details)
                events.append(TamperEvent("raised", self._image_alert))
            return events
        if candidate == alert.cause:
            self._switch = None
            return events
        if self._switch is None or self._switch[0] != candidate:
            self._switch = (candidate, ts)
        elif ts - self._switch[1] >= cfg.raise_delay(candidate):
            events.append(self._clear(alert.cause, ts))
            self._image_alert = self._raise_alert(candidate, self._switch[1], ts, frame, details)
            events.append(TamperEvent("raised", self._image_alert))
            self._switch = None
        return events

    def _raise(
        self, cause: TamperCause, since: float, ts: float, frame: U8, details: dict[str, float]
    ) -> TamperEvent:
        return TamperEvent("raised", self._raise_alert(cause, since, ts, frame, details))

    def _raise_alert(
        self, cause: TamperCause, since: float, ts: float, frame: U8, details: dict[str, float]
    ) -> TamperAlert:
        alert = TamperAlert(
            cause=cause,
            severity=SEVERITY[cause],
            started_at=since,
            raised_at=ts,
            snapshot_before=self._before_snapshot(since),
            snapshot_after=self._jpeg(frame),
            details={k: v for k, v in details.items() if not math.isnan(v)},
        )
        self._alerts[cause] = alert
        self._history.append(alert)
        del self._history[:-100]
        return alert

    def _clear(self, cause: TamperCause, ts: float) -> TamperEvent:
        alert = self._alerts[cause]
        alert.ended_at = ts
        if alert is self._image_alert:
            self._image_alert = None
            self._run_since = None
        if cause == "frozen":
            self._frozen_ok_since = None
        return TamperEvent("cleared", alert)

    def _jpeg(self, frame: U8) -> bytes:
        cfg = self.config
        return encode_jpeg(frame, cfg.snapshot_quality, max_width=cfg.snapshot_width)

    def _before_snapshot(self, since: float) -> bytes | None:
        older = [jpeg for t, jpeg in self._snapshots if t <= since - 1.0]
        if older:
            return older[-1]
        if self._snapshots:
            return self._snapshots[0][1]
        if self._ref is not None:
            return encode_jpeg(np.clip(self._ref.small, 0, 255).astype(np.uint8), 85)
        return None

    def _maybe_snapshot(self, frame: U8, ts: float) -> None:
        cfg = self.config
        if self._last_snapshot is not None and ts - self._last_snapshot < cfg.snapshot_interval:
            return
        self._last_snapshot = ts
        self._snapshots.append((ts, self._jpeg(frame)))
        del self._snapshots[:-2]

    def _maybe_sample(self, small: U8, ts: float) -> None:
        cfg = self.config
        interval = cfg.ref_learn_interval if len(self._ring) < cfg.ref_samples else cfg.ref_interval
        if self._last_sample is not None and ts - self._last_sample < interval:
            return
        self._last_sample = ts
        self._ring.append(np.ascontiguousarray(small).copy())
        del self._ring[: -cfg.ref_samples]
        self._ref = self._build_reference()

    def _build_reference(self) -> _Reference:
        cfg = self.config
        gx, gy = cfg.grid
        if len(self._ring) == 1:
            ref_small = self._ring[0].astype(np.float32)
        else:
            ref_small = np.median(np.stack(self._ring), axis=0).astype(np.float32)
        ref_small = _crop(ref_small, gx, gy)
        coarse = cast(F32, cv2.blur(ref_small, (9, 9)))
        fine = cast(F32, cv2.subtract(cv2.blur(ref_small, (3, 3)), coarse))
        fine_std = _block_std(fine, gx, gy)[1]
        coarse_mean, coarse_std = _block_std(coarse, gx, gy)
        return _Reference(
            small=ref_small,
            coarse=coarse,
            coarse_mean=coarse_mean,
            coarse_std=coarse_std,
            fine_std=fine_std,
            fine_p70=_quantile(fine_std, 0.7),
            fine_info=fine_std >= cfg.fine_info,
            coarse_info=coarse_std >= cfg.coarse_info,
            mean=float(ref_small.mean()),
        )
