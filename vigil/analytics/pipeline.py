"""One camera's sub-stream from depacketized frames to analysis results (no Django).

The RTSP depacketizer hands out access units as MP4 samples (length-prefixed NAL units)
with the stream's parameter sets (:class:`~vigil.media.codecs.VideoParams`). The
decoder is opened with the ``avcC``/``hvcC`` record of those parameter sets as
extradata, so the samples go to FFmpeg as they are (no Annex-B rewrite), and reopened
when the camera changes them. Frames are picked on the analysis rate's time grid
(:class:`~vigil.vision.decode.RateSelector`) by the decoder and analysed by the vision
engine's :class:`~vigil.vision.pipeline.CameraAnalyser`.

Timestamps are UTC seconds (the caller maps RTP ticks with a
:class:`~vigil.media.clock.StreamClock`), so results carry wall-clock times that match
the recorded footage, and ``check_signal`` runs on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vigil.media.codecs import VideoParams
from vigil.vision.decode import PacketDecoder
from vigil.vision.imageops import U8
from vigil.vision.motion import MotionEventUpdate
from vigil.vision.pipeline import AnalyserConfig, CameraAnalyser, FrameAnalysis
from vigil.vision.quality import QualitySample
from vigil.vision.tamper import TamperEvent


@dataclass
class PipelineOutput:
    """What one fed sample produced (usually nothing, or one analysed frame)."""

    frames: int = 0
    motion: list[MotionEventUpdate] = field(default_factory=list)
    tamper: list[TamperEvent] = field(default_factory=list)
    quality: list[QualitySample] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def add(self, fa: FrameAnalysis) -> None:
        self.frames += 1
        self.motion.extend(fa.motion_events)
        self.tamper.extend(fa.tamper_events)
        if fa.quality is not None:
            self.quality.append(fa.quality)

    @property
    def empty(self) -> bool:
        return not (self.motion or self.tamper or self.quality)


class CameraPipeline:
    """Decoder + analyser of one camera; not thread-safe (one thread owns it)."""

    def __init__(
        self,
        config: AnalyserConfig,
        *,
        state: bytes | None = None,
        fps: float = 5.0,
        keyframes_only: bool = False,
    ) -> None:
        self.analyser = CameraAnalyser(config, state)
        self.fps = fps
        self.keyframes_only = keyframes_only
        self._decoder: PacketDecoder | None = None
        self._params: VideoParams | None = None
        self.decoded_errors = 0
        self.last_ts: float | None = None
        #: set to keep a copy of the next analysed picture (the view for the mask editor)
        self.capture_view = False
        self._view: U8 | None = None
        # a keyframe was decoded since the last analysed frame (it may not have been
        # picked by the 5 fps grid, but the next picked frame shows its re-coding)
        self._key_since = False

    @property
    def config(self) -> AnalyserConfig:
        return self.analyser.config

    def reconfigure(self, config: AnalyserConfig) -> None:
        """New masks, zones or switches: a fresh analyser that keeps the learned
        reference view (tamper state)."""
        state = self.analyser.save_state()
        self.analyser = CameraAnalyser(config, state)

    def restart_stream(self) -> PipelineOutput:
        """The connection ended: close the open motion event, forget the decoder and the
        motion background (a new connection starts over), keep the tamper reference."""
        out = PipelineOutput()
        if self.last_ts is not None:
            out.motion.extend(self.analyser.tracker.flush(self.last_ts))
        self.analyser.motion.reset()
        self._decoder = None
        self._params = None
        return out

    def feed(
        self, sample: bytes, ts: float, keyframe: bool, params: VideoParams | None
    ) -> PipelineOutput:
        """One access unit (MP4 sample) at UTC ``ts``."""
        out = PipelineOutput()
        if params is not None and params is not self._params:
            if self._params is None or params != self._params:
                if not params.complete:
                    return out
                self._decoder = PacketDecoder(
                    params.codec,
                    fps=self.fps,
                    keyframes_only=self.keyframes_only,
                    extradata=params.config_record,
                )
            self._params = params
        decoder = self._decoder
        if decoder is None:
            return out
        self._key_since = self._key_since or keyframe
        try:
            frames = decoder.decode(sample, ts, keyframe)
        except Exception:  # a corrupt sample: FFmpeg resynchronises on the next keyframe
            self.decoded_errors += 1
            return out
        for frame in frames:
            key, self._key_since = self._key_since or frame.keyframe, False
            out.width, out.height = frame.width, frame.height
            self.last_ts = frame.ts
            if self.capture_view:
                self.capture_view = False
                self._view = np.array(frame.luma, copy=True)
            out.add(self.analyser.process(frame.luma, frame.ts, keyframe=key))
        return out

    def take_view(self) -> U8 | None:
        view, self._view = self._view, None
        return view

    def check_signal(self, now: float) -> list[TamperEvent]:
        return self.analyser.check_signal(now)

    def accept_view(self) -> list[TamperEvent]:
        return self.analyser.tamper.accept_view()

    def save_state(self) -> bytes:
        return self.analyser.save_state()

    @property
    def reference_ready(self) -> bool:
        return not self.analyser.tamper.learning
