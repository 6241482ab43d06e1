"""One camera's analysis: motion + tamper + periodic quality, sharing one downscale.

This is what the recorder/web side drives per camera::

    analyser = CameraAnalyser(AnalyserConfig(spec=CameraSpec(640, 360, 512)), state=saved)
    for frame in decoder.decode(packet_bytes, ts):          # vigil.vision.decode
        out = analyser.process(frame.luma, frame.ts)
        ...  # out.motion_events, out.tamper_events, out.quality
    analyser.check_signal(now)                             # every second, for video loss
    saved = analyser.save_state()                          # persist per camera
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.vision.imageops import U8, halve, halvings_for, to_luma
from vigil.vision.motion import (
    MotionConfig,
    MotionDetector,
    MotionEventTracker,
    MotionEventUpdate,
    MotionResult,
    TrackerConfig,
)
from vigil.vision.quality import CameraSpec, QualitySample, QualitySampler, QualityThresholds
from vigil.vision.tamper import TamperConfig, TamperDetector, TamperEvent


@dataclass(frozen=True, slots=True)
class AnalyserConfig:
    motion: MotionConfig = field(default_factory=MotionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    tamper: TamperConfig = field(default_factory=TamperConfig)
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    #: seconds between quality samples (0 disables)
    quality_interval: float = 60.0
    spec: CameraSpec | None = None
    #: the camera's sharpness at commissioning, if measured (see quality.py)
    reference_sharpness: float | None = None
    motion_enabled: bool = True
    tamper_enabled: bool = True


@dataclass(slots=True)
class FrameAnalysis:
    ts: float
    motion: MotionResult | None
    motion_events: list[MotionEventUpdate]
    tamper_events: list[TamperEvent]
    quality: QualitySample | None


class CameraAnalyser:
    """All per-frame analysis of one camera; not thread-safe (one per camera)."""

    def __init__(self, config: AnalyserConfig | None = None, state: bytes | None = None) -> None:
        self.config = config or AnalyserConfig()
        cfg = self.config
        self.motion = MotionDetector(cfg.motion)
        self.tracker = MotionEventTracker(cfg.tracker)
        self.tamper = TamperDetector(cfg.tamper)
        self.quality = QualitySampler(
            cfg.spec,
            interval=cfg.quality_interval,
            reference_sharpness=cfg.reference_sharpness,
            thresholds=cfg.quality,
        )
        self._shared = cfg.motion.target_height == cfg.tamper.target_height
        self._halvings: int | None = None
        self._shape: tuple[int, int] | None = None
        if state:
            self.tamper.load_state(state)

    def process(
        self,
        frame: U8,
        ts: float,
        *,
        bgr: U8 | None = None,
        bitrate_kbps: float | None = None,
        keyframe: bool = False,
    ) -> FrameAnalysis:
        """Analyse one frame (luma, or BGR) at stream time ``ts`` in seconds.

        ``bgr`` (optional) is used for thumbnails and snapshots instead of the luma.
        ``bitrate_kbps`` is the stream's measured bitrate, for the quality sample.
        ``keyframe``: the frame was decoded from a keyframe (the frozen-picture check
        tolerates the re-coding of an unchanged picture across keyframes).
        """
        cfg = self.config
        luma = to_luma(frame)
        if self._shape != luma.shape:
            self._shape = (int(luma.shape[0]), int(luma.shape[1]))
            self._halvings = halvings_for(luma.shape[0], cfg.motion.target_height)
        small = halve(luma, self._halvings or 0) if self._shared else None
        picture = bgr if bgr is not None else luma
        motion: MotionResult | None = None
        motion_events: list[MotionEventUpdate] = []
        if cfg.motion_enabled:
            motion = self.motion.detect(luma, ts, small=small)
            motion_events = self.tracker.update(motion, picture)
        tamper_events = (
            self.tamper.update(picture, ts, small=small, keyframe=keyframe)
            if cfg.tamper_enabled
            else []
        )
        quality = None
        if cfg.quality_interval > 0 and self.quality.due(ts):
            quality = self.quality.maybe_sample(picture, ts, bitrate_kbps)
        return FrameAnalysis(ts, motion, motion_events, tamper_events, quality)

    def check_signal(self, now: float) -> list[TamperEvent]:
        """Drive video-loss detection (same clock as the frame timestamps)."""
        return self.tamper.check_signal(now) if self.config.tamper_enabled else []

    def close(self, ts: float) -> tuple[list[MotionEventUpdate], list[TamperEvent]]:
        """Flush the open motion event and active alerts (camera stopped)."""
        return self.tracker.flush(ts), self.tamper.flush(ts)

    def save_state(self) -> bytes:
        """Per-camera state to persist (the tamper reference and last good snapshot)."""
        return self.tamper.save_state()

    def load_state(self, data: bytes) -> None:
        self.tamper.load_state(data)
