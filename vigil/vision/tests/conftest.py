"""Shared fixtures: the real sample footage (skipped when absent) and derived clips."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import pytest

from vigil.media.simulator.fixtures import footage_dir
from vigil.vision.decode import DecodedFrame, probe, read_video
from vigil.vision.footage import derive_substream, footage_path, have_ffmpeg

cv2.setNumThreads(1)


@cache
def _load(name: str, fps: float | None, bgr: bool) -> tuple[list[DecodedFrame], float]:
    path = footage_path(name)
    assert path is not None
    return read_video(path, fps=fps, bgr=bgr), float(probe(path)["fps"] or 10.0)


@pytest.fixture(scope="session")
def footage() -> Callable[..., tuple[list[DecodedFrame], float]]:
    """``footage(name, fps=None, bgr=False) -> (frames, source_fps)``; skips the test
    when the sample footage is not available."""

    def get(
        name: str, fps: float | None = None, bgr: bool = False
    ) -> tuple[list[DecodedFrame], float]:
        if footage_path(name) is None:
            pytest.skip(
                f"sample footage {name} not found in {footage_dir()} "
                "(set VIGIL_FOOTAGE_DIR to the shared/footage folder)"
            )
        return _load(name, fps, bgr)

    return get


@pytest.fixture(scope="session")
def substream() -> str:
    """A 20 s camera-like 640x360 H.264 sub-stream derived from the footage (cached)."""
    if footage_path("one-by-one-person-detection.mp4") is None:
        pytest.skip(f"sample footage not found in {footage_dir()} (set VIGIL_FOOTAGE_DIR)")
    if not have_ffmpeg():
        pytest.skip("ffmpeg is not installed")
    return str(derive_substream(seconds=30.0))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the sample footage carry the project's ``footage`` marker; the
    face-redaction checks (Haar + dlib on every frame) are also ``slow``."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "footage" in names or "substream" in names or "clip" in names:
            item.add_marker(pytest.mark.footage)
        if "clip" in names:
            item.add_marker(pytest.mark.slow)
