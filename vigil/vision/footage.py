"""Where the real sample footage and the derived fixtures live.

The footage is read-only and never copied into the repository: it is found through
``VIGIL_FOOTAGE_DIR`` (default ``<repo>/../shared/footage``). Fixtures derived from it
(e.g. a camera-like 640x360 sub-stream) are written to ``VIGIL_CACHE_DIR`` (default
``<repo>/.cache/``, git-ignored) and reused while they are newer than their source.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vigil.media.simulator.fixtures import cache_dir as fixture_cache_dir
from vigil.media.simulator.fixtures import footage_dir
from vigil.vision.decode import probe

#: the sample videos (see the footage README)
SAMPLE_VIDEOS: tuple[str, ...] = (
    "one-by-one-person-detection.mp4",
    "car-detection.mp4",
    "bottle-detection.mp4",
    "classroom.gif",
    "people-detection.gif",
    "face-demographics-walking.gif",
    "store-aisle-detection.gif",
    "worker-zone-detection.gif",
    "person-bicycle-car-detection.gif",
)


def cache_dir() -> Path:
    path = fixture_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def footage_path(name: str) -> Path | None:
    """Path of a sample video, or None when the footage is not available."""
    path = footage_dir() / name
    return path if path.is_file() else None


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def derive_substream(
    name: str = "one-by-one-person-detection.mp4",
    *,
    width: int = 640,
    height: int = 360,
    bitrate_k: int = 400,
    gop_seconds: float = 2.0,
    codec: str = "h264",
    seconds: float | None = None,
) -> Path:
    """A camera-like sub-stream of a sample video (cached): ``width`` x ``height``, the
    source frame rate, ~``bitrate_k`` kbit/s CBR-ish, a keyframe every ``gop_seconds``,
    no B-frames (as IP cameras send). Raises FileNotFoundError without footage/ffmpeg."""
    src = footage_path(name)
    if src is None:
        raise FileNotFoundError(f"sample footage {name} not found in {footage_dir()}")
    if not have_ffmpeg():
        raise FileNotFoundError("ffmpeg is not installed")
    fps = probe(src)["fps"] or 10.0
    gop = max(1, round(fps * gop_seconds))
    stem = Path(name).stem
    tag = f"{stem}-{width}x{height}-{bitrate_k}k-g{gop}-{codec}" + (
        f"-{seconds:g}s" if seconds else ""
    )
    out = cache_dir() / f"{tag}.mp4"
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    tmp = out.with_suffix(".tmp.mp4")
    vcodec = (
        ["-c:v", "libx264", "-profile:v", "main", "-preset", "veryfast"]
        if codec == "h264"
        else ["-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error"]
    )
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-i", str(src), "-an",
        *(["-t", f"{seconds}"] if seconds else []),
        "-vf", f"scale={width}:{height}", *vcodec,
        "-bf", "0", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-b:v", f"{bitrate_k}k", "-maxrate", f"{int(bitrate_k * 1.2)}k",
        "-bufsize", f"{bitrate_k * 2}k", str(tmp),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    tmp.replace(out)
    return out
