"""Segment files: layout, writing, finishing (fsync) and crash recovery.

Layout (UTC, browsable by a person)::

    <volume>/<camera_code>/<YYYY-MM-DD>/<HHMMSS>-<seq>.mp4

``seq`` is a two-digit counter that only disambiguates segments starting within the
same second (the file is created with ``O_EXCL`` and never overwritten).

Lifecycle of a file (Moonfire-style):

1. created with ``O_CREAT | O_EXCL``; init segment (``ftyp`` + ``moov``) written;
2. fragments (``moof`` + ``mdat``) appended at every keyframe or every ~1 s, the SHA-256
   updated incrementally from the bytes written (the file is never re-read);
3. cut at the first keyframe after the target duration (default 10 s) or when the
   stream's parameters change (new resolution -> new init);
4. :meth:`SegmentFile.finish` fsyncs the file, closes it, fsyncs its directory (and any
   parent directory created for it) and returns a :class:`FinishedSegment`. Only then may
   the catalog row be inserted (the Django side's job).

:func:`recover` turns a file left behind by a crash into a :class:`FinishedSegment`
covering its complete fragments, truncating a torn tail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vigil.media.clock import StreamClock
from vigil.media.codecs import AacConfig, VideoParams
from vigil.media.fmp4 import (
    AUDIO_TRACK_ID,
    VIDEO_TIMESCALE,
    VIDEO_TRACK_ID,
    Mp4Error,
    Sample,
    TrackRun,
    fragment,
    init_segment,
    scan,
)
from vigil.media.rtp import Frame

__all__ = [
    "FinishedSegment",
    "SegmentFile",
    "SegmentName",
    "SegmentWriter",
    "parse_segment_path",
    "recover",
    "segment_path",
    "validate_camera_code",
]

_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_RE = re.compile(r"(\d{6})-(\d{2,})\.mp4")


def validate_camera_code(code: str) -> str:
    """Return ``code`` if it is safe as a directory name, else raise ValueError."""
    if not _CODE_RE.fullmatch(code) or code in (".", ".."):
        raise ValueError(
            f"camera code {code!r} must be 1-64 of A-Z a-z 0-9 _ . - (not starting with . _ -)"
        )
    return code


def segment_path(
    volume: str | os.PathLike[str], camera_code: str, start_utc: float, seq: int = 0
) -> Path:
    """``<volume>/<code>/<YYYY-MM-DD>/<HHMMSS>-<seq>.mp4`` for a UTC start time."""
    validate_camera_code(camera_code)
    t = dt.datetime.fromtimestamp(start_utc, tz=dt.UTC)
    return (
        Path(volume)
        / camera_code
        / t.strftime("%Y-%m-%d")
        / f"{t.strftime('%H%M%S')}-{seq:02d}.mp4"
    )


@dataclass(frozen=True)
class SegmentName:
    """What a segment's path says: camera, UTC start (to the second) and sequence."""

    camera_code: str
    start: dt.datetime
    seq: int


def parse_segment_path(path: str | os.PathLike[str]) -> SegmentName:
    """Inverse of :func:`segment_path` (raises ValueError for foreign paths)."""
    p = Path(path)
    m = _NAME_RE.fullmatch(p.name)
    if not m:
        raise ValueError(f"not a segment file name: {p.name!r}")
    code = p.parent.parent.name
    validate_camera_code(code)
    day = dt.datetime.strptime(p.parent.name, "%Y-%m-%d").date()
    hms = dt.datetime.strptime(m.group(1), "%H%M%S").time()
    start = dt.datetime.combine(day, hms, tzinfo=dt.UTC)
    return SegmentName(camera_code=code, start=start, seq=int(m.group(2)))


@dataclass(frozen=True)
class FinishedSegment:
    """A durable segment file, ready for its catalog row."""

    path: Path
    camera_code: str
    start_utc: float  # seconds since the Unix epoch
    end_utc: float
    duration: float  # from stream timestamps (seconds)
    size: int
    sha256: str
    codec: str  # "h264" / "h265"
    codec_string: str  # RFC 6381, e.g. avc1.640028 (+ ",mp4a.40.2" is NOT appended)
    width: int
    height: int
    fps: float
    has_audio: bool
    init_size: int
    fragments: int
    frames: int = 0
    audio_codec_string: str | None = None
    recovered: bool = False

    @property
    def start(self) -> dt.datetime:
        """Start as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.start_utc, tz=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """End as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.end_utc, tz=dt.UTC)

    @property
    def mime_codecs(self) -> str:
        """``codecs`` value for MSE, e.g. ``avc1.640028,mp4a.40.2``."""
        if self.audio_codec_string:
            return f"{self.codec_string},{self.audio_codec_string}"
        return self.codec_string


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class SegmentFile:
    """One segment file being written. Not thread-safe; :meth:`finish` may run in a thread."""

    def __init__(
        self,
        path: Path,
        fd: int,
        *,
        camera_code: str,
        params: VideoParams,
        audio: AacConfig | None,
        start_ticks: int,
        start_utc: float,
        new_dirs: list[Path],
    ) -> None:
        self.path = path
        self._fd = fd
        self.camera_code = camera_code
        self.params = params
        self.audio = audio
        self.start_ticks = start_ticks
        self.start_utc = start_utc
        self.end_ticks = start_ticks
        self.end_utc = start_utc
        self._sha = hashlib.sha256()
        self.size = 0
        self.fragments = 0
        self.frames = 0
        self._new_dirs = new_dirs
        self.audio_base = start_ticks * audio.sample_rate // VIDEO_TIMESCALE if audio else 0
        init = init_segment(params, audio, start_utc=start_utc)
        self.init_size = len(init)
        self.write(init)

    @property
    def duration_ticks(self) -> int:
        """Video ticks written so far."""
        return self.end_ticks - self.start_ticks

    def write(self, data: bytes) -> None:
        """Append bytes and hash them."""
        _write_all(self._fd, data)
        self._sha.update(data)
        self.size += len(data)

    def finish(self) -> FinishedSegment:
        """fsync the file, close it, fsync its directory; return the catalog record."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
        _fsync_dir(self.path.parent)
        for d in self._new_dirs:
            _fsync_dir(d)
        duration = self.duration_ticks / VIDEO_TIMESCALE
        return FinishedSegment(
            path=self.path,
            camera_code=self.camera_code,
            start_utc=self.start_utc,
            end_utc=self.end_utc,
            duration=duration,
            size=self.size,
            sha256=self._sha.hexdigest(),
            codec=self.params.codec,
            codec_string=self.params.codec_string,
            width=self.params.width,
            height=self.params.height,
            fps=round(self.frames / duration, 3) if duration > 0 else 0.0,
            has_audio=self.audio is not None,
            init_size=self.init_size,
            fragments=self.fragments,
            frames=self.frames,
            audio_codec_string=self.audio.codec_string if self.audio else None,
        )

    def abort(self) -> None:
        """Close and delete the file (nothing worth keeping was written)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


class SegmentWriter:
    """Turns a camera's frame stream into a sequence of segment files.

    :meth:`write` returns a :class:`SegmentFile` whenever one was cut; the caller must
    call its ``finish()`` (it fsyncs, so the ingest runs it in a thread). Frames before
    the first keyframe are dropped. Track 0 is video (90 kHz ticks), track 1 AAC audio
    (ticks at its sample rate, same time origin).
    """

    def __init__(
        self,
        volume: str | os.PathLike[str],
        camera_code: str,
        *,
        clock: StreamClock | None = None,
        audio: AacConfig | None = None,
        target_duration: float = 10.0,
        fragment_duration: float = 1.0,
        floor_utc: float | None = None,
    ) -> None:
        self.volume = Path(volume)
        self.camera_code = validate_camera_code(camera_code)
        self.clock = clock or StreamClock(VIDEO_TIMESCALE, name=camera_code)
        self.audio = audio
        self.target_ticks = round(target_duration * VIDEO_TIMESCALE)
        self.fragment_ticks = round(fragment_duration * VIDEO_TIMESCALE)
        self.floor_utc = floor_utc
        self.current: SegmentFile | None = None
        self._video: list[Frame] = []
        self._audio: list[Frame] = []
        self._last_duration = 3000
        self.dropped = 0
        self._sequence = 0

    # --- files ---------------------------------------------------------------------------
    def _open(self, frame: Frame) -> None:
        params = frame.params
        assert params is not None
        clock = self.clock
        start_utc = (
            clock.anchor(frame.ticks, self.floor_utc)
            if not clock.anchored
            else clock.observe(frame.ticks)
        )
        if self.floor_utc is not None and start_utc < self.floor_utc:
            start_utc = self.floor_utc
        camera_dir = self.volume / self.camera_code
        new_dirs: list[Path] = []
        seq = 0
        while True:
            path = segment_path(self.volume, self.camera_code, start_utc, seq)
            for d in (camera_dir, path.parent):
                if not d.is_dir():
                    try:
                        d.mkdir(parents=True)
                        new_dirs.append(d.parent)
                    except FileExistsError:
                        pass
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                break
            except FileExistsError:
                seq += 1
        self.current = SegmentFile(
            path,
            fd,
            camera_code=self.camera_code,
            params=params,
            audio=self.audio,
            start_ticks=frame.ticks,
            start_utc=start_utc,
            new_dirs=new_dirs,
        )
        self._sequence = 0
        self._audio = [a for a in self._audio if a.ticks >= self.current.audio_base]

    def _flush(self, next_ticks: int) -> None:
        """Write pending video frames (and the audio before ``next_ticks``) as a fragment."""
        seg = self.current
        video = self._video
        if seg is None or not video:
            return
        samples: list[Sample] = []
        prev = video[0]
        for f in video[1:]:
            d = f.ticks - prev.ticks
            samples.append(Sample(prev.data, d if d > 0 else 1, prev.keyframe))
            prev = f
        d = next_ticks - prev.ticks
        samples.append(Sample(prev.data, d if d > 0 else 1, prev.keyframe))
        if d > 0:
            self._last_duration = d
        runs = [TrackRun(VIDEO_TRACK_ID, video[0].ticks - seg.start_ticks, samples)]
        if self.audio is not None and self._audio:
            limit = next_ticks * self.audio.sample_rate // VIDEO_TIMESCALE
            take = [a for a in self._audio if a.ticks < limit]
            if take:
                self._audio = self._audio[len(take) :]
                fl = self.audio.frame_length
                runs.append(
                    TrackRun(
                        AUDIO_TRACK_ID,
                        take[0].ticks - seg.audio_base,
                        [Sample(a.data, fl, True) for a in take],
                    )
                )
        self._sequence += 1
        seg.write(fragment(self._sequence, runs))
        seg.fragments += 1
        seg.frames += len(video)
        seg.end_ticks = next_ticks
        seg.end_utc = self.clock.to_utc(next_ticks)
        self._video = []

    # --- frames --------------------------------------------------------------------------
    def write(self, frame: Frame) -> SegmentFile | None:
        """Add a frame; returns the previous file when this frame started a new one."""
        if frame.track != 0:
            if (
                self.current is not None
                and self.audio is not None
                and frame.ticks >= self.current.audio_base
            ):
                self._audio.append(frame)
            return None
        seg = self.current
        if seg is None:
            if not frame.keyframe or frame.params is None or not frame.params.complete:
                self.dropped += 1
                return None
            self._open(frame)
            self._video.append(frame)
            return None
        self.clock.observe(frame.ticks)
        done: SegmentFile | None = None
        if frame.keyframe:
            self._flush(frame.ticks)
            changed = (
                frame.params is not None and frame.params != seg.params and frame.params.complete
            )
            if changed or frame.ticks - seg.start_ticks >= self.target_ticks:
                done = seg
                self.floor_utc = seg.end_utc
                self._open(frame)
        elif self._video and frame.ticks - self._video[0].ticks >= self.fragment_ticks:
            self._flush(frame.ticks)
        self._video.append(frame)
        return done

    def close(self, end_ticks: int | None = None) -> SegmentFile | None:
        """Flush the open file (last frame gets the previous frame interval) and return it
        for finishing, or None if nothing was recorded."""
        seg = self.current
        if seg is None:
            return None
        if self._video:
            last = self._video[-1].ticks
            self._flush(
                end_ticks
                if end_ticks is not None and end_ticks > last
                else last + self._last_duration
            )
        self.current = None
        self._audio = []
        self.floor_utc = seg.end_utc
        if seg.fragments == 0:
            seg.abort()
            return None
        return seg


def recover(path: str | os.PathLike[str]) -> FinishedSegment | None:
    """Make a crash-left segment file consistent and describe it.

    Truncates a torn tail after the last complete fragment and fsyncs. Returns None when
    the file holds no complete fragment (the caller should delete it). The SHA-256 is
    computed by reading the kept bytes.
    """
    p = Path(path)
    try:
        info = scan(p)
    except (Mp4Error, OSError, ValueError):
        return None
    if not info.fragments:
        return None
    if info.truncated:
        with open(p, "r+b") as rw:
            rw.truncate(info.complete_size)
            rw.flush()
            os.fsync(rw.fileno())
        _fsync_dir(p.parent)
    sha = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    try:
        name = parse_segment_path(p)
        code = name.camera_code
        fallback_start = name.start.timestamp()
    except ValueError:
        code = p.parent.parent.name
        fallback_start = p.stat().st_mtime - info.duration
    start = info.start_utc if info.start_utc is not None else fallback_start
    video = info.video
    audio = info.audio
    frames = sum(f.samples for f in info.fragments)
    duration = info.duration
    return FinishedSegment(
        path=p,
        camera_code=code,
        start_utc=start,
        end_utc=start + duration,
        duration=duration,
        size=info.complete_size,
        sha256=sha.hexdigest(),
        codec=video.codec if video else "",
        codec_string=video.codec_string if video else "",
        width=video.width if video else 0,
        height=video.height if video else 0,
        fps=round(frames / duration, 3) if duration > 0 else 0.0,
        has_audio=audio is not None,
        init_size=info.init_size,
        fragments=len(info.fragments),
        frames=frames,
        audio_codec_string=audio.codec_string if audio and audio.codec_string else None,
        recovered=True,
    )
