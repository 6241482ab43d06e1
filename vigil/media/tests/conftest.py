"""Shared fixtures for the media engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.media.codecs import split_annexb
from vigil.media.simulator import gst_available
from vigil.media.simulator.fixtures import CAR_MAIN_AV, MAIN_H264, MAIN_H265, SUB_H264, Fixture
from vigil.media.tests.helpers import fixture_or_skip

_GST: bool | None = None


def require_gst() -> None:
    """Skip unless the system Python has GstRtspServer."""
    global _GST  # noqa: PLW0603
    if _GST is None:
        _GST = gst_available()
    if not _GST:
        pytest.skip("GStreamer RTSP server (system python3 with gi/GstRtspServer) not available")


@pytest.fixture(scope="session")
def main_h264() -> Fixture:
    """1080p H.264 ~2 Mbit/s camera-like stream."""
    return fixture_or_skip(MAIN_H264)


@pytest.fixture(scope="session")
def sub_h264() -> Fixture:
    """640x360 H.264 sub-stream."""
    return fixture_or_skip(SUB_H264)


@pytest.fixture(scope="session")
def main_h265() -> Fixture:
    """1080p H.265 main stream."""
    return fixture_or_skip(MAIN_H265)


@pytest.fixture(scope="session")
def car_av() -> Fixture:
    """720p H.264 + AAC street camera."""
    return fixture_or_skip(CAR_MAIN_AV)


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """An empty recording volume."""
    vol = tmp_path / "volume"
    vol.mkdir()
    return vol


def first_nal(fixture: Fixture, nal_type: int) -> bytes:
    """First NAL unit of ``nal_type`` in a fixture's elementary stream."""
    for nal in split_annexb(fixture.video.read_bytes()[:400_000]):
        t = (nal[0] >> 1) & 0x3F if fixture.codec == "h265" else nal[0] & 0x1F
        if t == nal_type:
            return nal
    raise AssertionError(f"no NAL of type {nal_type}")
