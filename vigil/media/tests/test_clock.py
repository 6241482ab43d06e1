"""StreamClock with injected wall and monotonic clocks."""

from __future__ import annotations

import itertools
import logging

import pytest

from vigil.media.clock import StreamClock


class FakeClocks:
    """A wall clock and a monotonic clock that tests move by hand."""

    def __init__(self, wall: float = 1_700_000_000.0) -> None:
        self.mono_now = 100.0
        self.wall_now = wall

    def mono(self) -> float:
        return self.mono_now

    def wall(self) -> float:
        return self.wall_now

    def advance(self, seconds: float, wall_rate: float = 1.0) -> None:
        self.mono_now += seconds
        self.wall_now += seconds * wall_rate


def make(clocks: FakeClocks, **kw: float) -> StreamClock:
    return StreamClock(90000, wall=clocks.wall, mono=clocks.mono, **kw)  # type: ignore[arg-type]


def test_anchor_and_advance_with_stream_time() -> None:
    c = FakeClocks()
    clock = make(c)
    assert clock.anchor(5000) == c.wall_now
    assert clock.to_utc(5000 + 90000 * 10) == pytest.approx(c.wall_now + 10)


def test_floor_prevents_overlap() -> None:
    c = FakeClocks()
    clock = make(c)
    assert clock.anchor(0, floor_utc=c.wall_now + 3) == c.wall_now + 3


def test_drift_is_corrected_slowly() -> None:
    """A camera clock 0.2 % slow: the mapping follows the wall clock at <= 500 ppm."""
    c = FakeClocks()
    clock = make(c)
    anchor = clock.anchor(0)
    prev = anchor
    ticks = 0
    for _ in range(3600):  # one hour, one frame observation per second
        c.advance(1.0)
        ticks += int(90000 * 0.998)
        utc = clock.observe(ticks)
        assert utc > prev
        prev = utc
        assert abs(clock.rate - 1.0) <= 500e-6 + 1e-12
    # Stream time says 3592.8 s; the wall clock 3600 s. The map moved towards the wall
    # clock by at most 500 ppm of elapsed stream time.
    stream_seconds = ticks / 90000
    mapped = clock.to_utc(ticks) - anchor
    assert stream_seconds + 1.0 < mapped <= stream_seconds * (1 + 500e-6) + 1e-6


def test_small_jitter_keeps_rate_near_one() -> None:
    c = FakeClocks()
    clock = make(c)
    clock.anchor(0)
    for i in range(1, 600):
        c.advance(1.0 + (0.03 if i % 2 else -0.03))
        clock.observe(i * 90000)
    assert abs(clock.rate - 1.0) < 100e-6
    assert abs(clock.error) < 0.05


def test_wall_clock_step_is_logged_not_followed(caplog: pytest.LogCaptureFixture) -> None:
    c = FakeClocks()
    clock = make(c)
    clock.anchor(0)
    ends = []
    with caplog.at_level(logging.WARNING, logger="vigil.media.clock"):
        for i in range(1, 40):
            c.advance(1.0)
            if i == 10:
                c.wall_now -= 3600  # NTP steps the clock back one hour
            ends.append(clock.observe(i * 90000))
    assert any("stepped" in r.message for r in caplog.records)
    assert len(clock.steps) == 1
    assert clock.steps[0].seconds == pytest.approx(-3600)
    # Strictly increasing, never jumping back: no overlapping or negative segments.
    assert all(b > a for a, b in itertools.pairwise(ends))
    steps = [b - a for a, b in itertools.pairwise(ends)]
    assert min(steps) >= 1.0 * (1 - 500e-6) - 1e-9
