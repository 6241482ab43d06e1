"""Mapping stream timestamps to UTC.

A camera's RTP clock defines durations (it is what the decoder plays back); the wall
clock defines *when*. :class:`StreamClock` anchors tick 0 of a connection to the wall
clock when the first frame arrives (never earlier than a given floor, normally the end
of the previous segment, so segments never overlap), then advances with stream time.

Once a second it compares the mapping with the wall clock and steers towards it by at
most ``max_slew_ppm`` (500 ppm by default): camera clock drift is absorbed slowly and
the mapping is always continuous and strictly increasing, so a segment can never get a
negative duration or overlap the previous one. A wall-clock step (NTP correction,
someone setting the time) is detected by comparing the wall clock with the monotonic
clock; it is logged and then only slewed towards, never jumped to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["ClockStep", "StreamClock"]

log = logging.getLogger("vigil.media.clock")


class ClockStep:
    """A detected wall-clock step: when (monotonic) and by how many seconds."""

    __slots__ = ("mono", "seconds")

    def __init__(self, mono: float, seconds: float) -> None:
        self.mono = mono
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"ClockStep({self.seconds:+.3f} s at mono {self.mono:.3f})"


class StreamClock:
    """Piecewise-linear, monotonic map from stream ticks to UTC seconds.

    ``wall`` and ``mono`` are injectable for tests.
    """

    def __init__(
        self,
        clock_rate: int = 90000,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        max_slew_ppm: float = 500.0,
        step_threshold: float = 1.0,
        observe_interval: float = 1.0,
        horizon: float = 60.0,
        name: str = "",
    ) -> None:
        self.clock_rate = clock_rate
        self._wall = wall
        self._mono = mono
        self.max_slew = max_slew_ppm * 1e-6
        self.step_threshold = step_threshold
        self.observe_interval = observe_interval
        self.horizon = horizon
        self.name = name
        self._base_ticks = 0
        self._base_utc = 0.0
        self._rate = 1.0
        self._anchored = False
        self._wall_minus_mono = 0.0
        self._next_observe = 0.0
        self._error = 0.0
        self.steps: list[ClockStep] = []

    @property
    def anchored(self) -> bool:
        """True once :meth:`anchor` was called."""
        return self._anchored

    @property
    def rate(self) -> float:
        """Current UTC seconds per stream second (1 +- max_slew)."""
        return self._rate

    @property
    def error(self) -> float:
        """Smoothed wall-clock minus mapped time, in seconds (last observation)."""
        return self._error

    def anchor(self, ticks: int, floor_utc: float | None = None) -> float:
        """Map ``ticks`` to the wall clock now (or to ``floor_utc`` if that is later)."""
        now = self._wall()
        utc = now if floor_utc is None else max(now, floor_utc)
        self._base_ticks = ticks
        self._base_utc = utc
        self._rate = 1.0
        self._anchored = True
        self._wall_minus_mono = now - self._mono()
        self._next_observe = self._mono() + self.observe_interval
        self._error = now - utc
        return utc

    def to_utc(self, ticks: int) -> float:
        """UTC seconds for ``ticks`` (extrapolated linearly from the last rebase)."""
        return self._base_utc + (ticks - self._base_ticks) / self.clock_rate * self._rate

    def observe(self, ticks: int) -> float:
        """Note that the frame at ``ticks`` arrived now; steer the mapping. Returns its UTC."""
        if not self._anchored:
            return self.anchor(ticks)
        mono = self._mono()
        if mono < self._next_observe:
            return self.to_utc(ticks)
        self._next_observe = mono + self.observe_interval
        wall = self._wall()
        offset = wall - mono
        jump = offset - self._wall_minus_mono
        if abs(jump) >= self.step_threshold:
            self.steps.append(ClockStep(mono, jump))
            log.warning(
                "wall clock stepped by %+.3f s%s; slewing towards it at <= %.0f ppm",
                jump,
                f" (camera {self.name})" if self.name else "",
                self.max_slew * 1e6,
            )
        self._wall_minus_mono = offset
        utc = self.to_utc(ticks)
        # Smooth network jitter: frames arrive late by a varying amount.
        self._error += 0.2 * ((wall - utc) - self._error)
        desired = self._error / self.horizon
        slew = max(-self.max_slew, min(self.max_slew, desired))
        # Rebase at this point so the map stays continuous, then change its slope.
        self._base_ticks = ticks
        self._base_utc = utc
        self._rate = 1.0 + slew
        return utc
