"""Camera-like elementary streams derived from the real sample footage.

The simulator serves Annex-B H.264/H.265 elementary streams (and ADTS AAC) that loop
seamlessly: each fixture starts with a keyframe carrying its parameter sets, is a whole
number of GOPs long, has no B-frames and a fixed keyframe interval, like a CCTV camera.
Fixtures are derived with the ffmpeg CLI at test time into a cache directory
(``VIGIL_CACHE_DIR``, default ``<repo>/.cache``) and reused across runs; the cache key
is the hash of the source file plus the encoding parameters. Footage is never copied
into the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "CAR_MAIN_AV",
    "MAIN_H264",
    "MAIN_H265",
    "SUB_H264",
    "Fixture",
    "FixtureSpec",
    "FootageMissing",
    "build_fixture",
    "cache_dir",
    "footage_dir",
    "repo_root",
]


class FootageMissing(RuntimeError):
    """The shared sample footage directory (or a file in it) is absent."""


def repo_root() -> Path:
    """The repository (worktree) root that contains the ``vigil`` package."""
    return Path(__file__).resolve().parents[3]


def footage_dir() -> Path:
    """Where the real footage lives: ``$VIGIL_FOOTAGE_DIR`` or ``<repo>/../shared/footage``."""
    env = os.environ.get("VIGIL_FOOTAGE_DIR")
    return Path(env) if env else repo_root().parent / "shared" / "footage"


def cache_dir() -> Path:
    """Derived-fixture cache: ``$VIGIL_CACHE_DIR`` or ``<repo>/.cache``."""
    env = os.environ.get("VIGIL_CACHE_DIR")
    return Path(env) if env else repo_root() / ".cache"


@dataclass(frozen=True)
class FixtureSpec:
    """How to derive one camera-like stream from a footage file."""

    name: str
    source: str  # file name inside footage_dir()
    codec: str  # "h264" or "h265"
    width: int
    height: int
    fps: float
    bitrate_kbps: int
    gop_seconds: float = 2.0
    duration: float = 12.0
    profile: str = "high"
    audio: bool = False


@dataclass(frozen=True)
class Fixture:
    """A derived fixture on disk."""

    spec: FixtureSpec
    video: Path
    audio: Path | None

    @property
    def codec(self) -> str:
        """``h264`` or ``h265``."""
        return self.spec.codec

    @property
    def frames(self) -> int:
        """Number of video frames in one loop."""
        return round(self.spec.duration * self.spec.fps)

    def to_json(self) -> dict[str, object]:
        """Plain description for the simulator server's configuration."""
        return {
            "codec": self.spec.codec,
            "video": str(self.video),
            "audio": str(self.audio) if self.audio else None,
            "fps": self.spec.fps,
            "width": self.spec.width,
            "height": self.spec.height,
        }


MAIN_H264 = FixtureSpec(
    name="main-h264",
    source="one-by-one-person-detection.mp4",
    codec="h264",
    width=1920,
    height=1080,
    fps=10.0,
    bitrate_kbps=2000,
)
SUB_H264 = FixtureSpec(
    name="sub-h264",
    source="one-by-one-person-detection.mp4",
    codec="h264",
    width=640,
    height=360,
    fps=10.0,
    bitrate_kbps=450,
    profile="main",
)
MAIN_H265 = FixtureSpec(
    name="main-h265",
    source="one-by-one-person-detection.mp4",
    codec="h265",
    width=1920,
    height=1080,
    fps=10.0,
    bitrate_kbps=1500,
    duration=8.0,
    profile="main",
)
CAR_MAIN_AV = FixtureSpec(
    name="car-av",
    source="car-detection.mp4",
    codec="h264",
    width=1280,
    height=720,
    fps=12.5,
    bitrate_kbps=1500,
    duration=12.0,
    audio=True,
)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _video_args(spec: FixtureSpec) -> list[str]:
    gop = max(1, round(spec.fps * spec.gop_seconds))
    rate = f"{spec.bitrate_kbps}k"
    common = [
        "-vf",
        f"scale={spec.width}:{spec.height}:flags=bicubic,fps={spec.fps}",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        rate,
        "-maxrate",
        f"{int(spec.bitrate_kbps * 1.2)}k",
        "-bufsize",
        rate,
    ]
    if spec.codec == "h265":
        return [
            *common,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-profile:v",
            spec.profile,
            "-x265-params",
            f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1:"
            "aud=0:log-level=error",
            "-f",
            "hevc",
        ]
    return [
        *common,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        spec.profile,
        "-bf",
        "0",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-x264-params",
        "repeat-headers=1",
        "-f",
        "h264",
    ]


def build_fixture(spec: FixtureSpec, *, cache: Path | None = None) -> Fixture:
    """Derive (or reuse from the cache) the fixture described by ``spec``.

    Raises :class:`FootageMissing` when the source footage is not available.
    """
    source = footage_dir() / spec.source
    if not source.is_file():
        raise FootageMissing(f"sample footage {source} not found (set VIGIL_FOOTAGE_DIR)")
    if shutil.which("ffmpeg") is None:  # pragma: no cover - environment check
        raise FootageMissing("ffmpeg CLI not found")
    key_material = json.dumps({"src": _file_digest(source), "spec": asdict(spec), "v": 1})
    key = hashlib.sha256(key_material.encode()).hexdigest()[:16]
    root = (cache or cache_dir()) / "fixtures" / f"{spec.name}-{key}"
    ext = "hevc" if spec.codec == "h265" else "h264"
    video = root / f"video.{ext}"
    audio = root / "audio.aac" if spec.audio else None
    if video.is_file() and (audio is None or audio.is_file()):
        return Fixture(spec=spec, video=video, audio=audio)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=root.parent))
    try:
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-i",
            str(source),
            "-t",
            f"{spec.duration:.3f}",
            "-an",
            *_video_args(spec),
            str(tmp / video.name),
        ]
        if spec.audio:
            cmd += [
                "-t",
                f"{spec.duration:.3f}",
                "-vn",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-ac",
                "1",
                "-f",
                "adts",
                str(tmp / "audio.aac"),
            ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        try:
            tmp.rename(root)
        except OSError:
            # Another process built the same fixture concurrently: keep theirs.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Fixture(spec=spec, video=video, audio=audio)
