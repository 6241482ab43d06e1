"""Fixtures for the retention tests: real segment files (small fragmented MP4 cut from the
sample footage with ffmpeg), a real small filesystem, and a catalog writer."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import footage_dir


@pytest.fixture(scope="session")
def segment_blobs(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Small real fMP4 segments (2 s, 192 px) from the sample footage; random bytes of
    similar sizes when ffmpeg or the footage is missing (sizes are what eviction needs)."""
    source = footage_dir() / "one-by-one-person-detection.mp4"
    out = tmp_path_factory.mktemp("segments")
    if source.exists() and shutil.which("ffmpeg"):
        subprocess.run(
            [
                "ffmpeg", "-loglevel", "error", "-i", str(source), "-t", "16", "-an",
                "-vf", "scale=192:-2", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "120k",
                "-g", "20", "-f", "segment", "-segment_time", "2", "-reset_timestamps", "1",
                "-segment_format", "mp4", "-segment_format_options",
                "movflags=frag_keyframe+empty_moov+default_base_moof", str(out / "s%03d.mp4"),
            ],
            check=True,
            timeout=120,
        )  # fmt: skip
        blobs = [p.read_bytes() for p in sorted(out.glob("s*.mp4"))]
        if blobs:
            return blobs
    return [os.urandom(20_000 + 1000 * i) for i in range(8)]


@dataclass
class Catalog:
    """Writes segment files on a volume and their catalog rows, the way the recorder does
    (file written and fsynced first, then the row)."""

    blobs: list[bytes]
    counter: int = 0

    def add(
        self,
        camera,  # type: ignore[no-untyped-def]
        volume,  # type: ignore[no-untyped-def]
        start: datetime,
        seconds: float = 10.0,
        *,
        data: bytes | None = None,
        write: bool = True,
    ):  # type: ignore[no-untyped-def]
        from vigil.recording.models import Segment

        self.counter += 1
        blob = data if data is not None else self.blobs[self.counter % len(self.blobs)]
        rel = f"{camera.code}/{start:%Y-%m-%d}/{start:%H%M%S}-{self.counter}.mp4"
        if write:
            path = Path(volume.path) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        return Segment.objects.create(
            camera=camera,
            volume=volume,
            path=rel,
            start=start,
            end=start + timedelta(seconds=seconds),
            duration=seconds,
            size_bytes=len(blob),
            sha256=hashlib.sha256(blob).hexdigest(),
            codec="h264",
            width=192,
            height=108,
            fps=10,
        )


@pytest.fixture
def catalog(segment_blobs: list[bytes]) -> Catalog:
    return Catalog(segment_blobs)


def _mount(kind: str, target: Path, size_mb: int, image: Path) -> str | None:
    if kind == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(target)]
    else:
        subprocess.run(["truncate", "-s", f"{size_mb}M", str(image)], check=True)
        made = subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", str(image)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            return f"mkfs.ext4 failed: {made.stderr.strip()}"
        cmd = ["mount", "-o", "loop", str(image), str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else proc.stderr.strip() or "mount failed"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real, size-limited filesystem (tmpfs, else a loop-mounted ext4 image)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    target = tmp_path / f"vol-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    errors = []
    for kind in ("tmpfs", "ext4"):
        error = _mount(kind, target, 12, tmp_path / "volume.img")
        if error is None:
            break
        errors.append(f"{kind}: {error}")
    else:
        pytest.skip("cannot mount a small filesystem: " + "; ".join(errors))
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def english() -> Iterator[None]:
    """Service messages in English (Vietnamese is the site's default language)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def retention_config(settings):  # type: ignore[no-untyped-def]
    """Change [retention] keys for one test: ``retention_config(floor_days=5)``."""

    def apply(**changes: object) -> None:
        vigil = settings.VIGIL
        settings.VIGIL = vigil.model_copy(
            update={"retention": vigil.retention.model_copy(update=changes)}
        )

    return apply
