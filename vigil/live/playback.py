"""Recorded footage for the browser's player: a segment index and segment bytes.

Segments are served as they are on disk (no remuxing): the init segment, then the
complete ``moof``+``mdat`` fragments from the keyframe at or before the wanted time
(byte ranges from :func:`vigil.media.fmp4.scan`). Every file's decode times start at 0;
the player places each one on a single timeline whose 0 is the playback's start by
setting the SourceBuffer's ``timestampOffset`` to the segment's offset (sent with the
bytes), so gaps stay real holes and several cameras share one clock
(docs/decisions/0011-live-relay-and-mse-playback.md).

H.265 segments are transcoded to H.264 once, on demand, into a small size-capped cache
(``[live] transcode_cache_mb``); at most ``max_playback_transcodes`` run at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from vigil.live.transcode import transcode_segment
from vigil.media.fmp4 import ScanResult, scan
from vigil.recording.models import Segment

log = logging.getLogger("vigil.live.playback")

INDEX_LIMIT = 2000


class TranscodeBusy(Exception):
    """Every playback transcode slot is in use."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"transcoding limit reached ({limit} in use)")
        self.limit = limit


class FootageMissing(Exception):
    """The catalog row exists but the file cannot be read."""


@dataclass(frozen=True)
class SegmentBytes:
    data: bytes
    codec: str  # RFC 6381 codecs of what is served (video[,audio])
    offset: float  # seconds from the playback origin to the file's decode time 0
    first: float  # decode time (s) of the first fragment served
    last: float  # decode time (s) where the last fragment served ends
    transcoded: bool


def _seconds(start: datetime, t: datetime) -> float:
    return round((t - start).total_seconds(), 3)


def segment_index(
    camera_id: int,
    *,
    origin: datetime,
    start: datetime,
    end: datetime,
    t_from: float,
    t_to: float,
) -> list[dict[str, Any]]:
    """Segments of a camera overlapping [t_from, t_to] seconds after ``origin``, clipped to
    the playback range [start, end)."""
    from datetime import timedelta

    lo = max(start, origin + timedelta(seconds=max(0.0, t_from)))
    hi = min(end, origin + timedelta(seconds=max(0.0, t_to)))
    if hi <= lo:
        return []
    rows = (
        Segment.objects.filter(camera_id=camera_id, start__lt=hi, end__gt=lo)
        .order_by("start")
        .values("id", "start", "end", "codec", "fps", "width", "height")[:INDEX_LIMIT]
    )
    return [
        {
            "id": r["id"],
            "t0": _seconds(origin, r["start"]),
            "t1": _seconds(origin, r["end"]),
            "fps": r["fps"] or 0,
            "codec": r["codec"],
            "width": r["width"],
            "height": r["height"],
            "transcode": r["codec"] != "h264",
        }
        for r in rows
    ]


# ------------------------------------------------------------------------------ scans
_SCANS: OrderedDict[tuple[str, int, int], ScanResult] = OrderedDict()
_SCANS_LOCK = threading.Lock()


def scan_cached(path: Path) -> ScanResult:
    """``scan()`` of a file, remembered while its size and mtime stay the same."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _SCANS_LOCK:
        hit = _SCANS.get(key)
        if hit is not None:
            _SCANS.move_to_end(key)
            return hit
    result = scan(path)
    with _SCANS_LOCK:
        _SCANS[key] = result
        while len(_SCANS) > 512:
            _SCANS.popitem(last=False)
    return result


def codecs_of(result: ScanResult) -> str:
    return ",".join(t.codec_string for t in result.tracks if t.codec_string)


# ------------------------------------------------------------------------- transcodes
_SLOTS_LOCK = threading.Lock()
_SLOTS: threading.BoundedSemaphore | None = None
_SLOTS_SIZE = -1
_KEY_LOCKS: dict[str, threading.Lock] = {}
TRANSCODE_STATS = {"segments": 0, "cpu_seconds": 0.0}


def _slots() -> threading.BoundedSemaphore | None:
    global _SLOTS, _SLOTS_SIZE  # noqa: PLW0603 - one semaphore per process, sized from config
    size = settings.VIGIL.live.max_playback_transcodes
    with _SLOTS_LOCK:
        if size != _SLOTS_SIZE:
            _SLOTS = threading.BoundedSemaphore(size) if size > 0 else None
            _SLOTS_SIZE = size
        return _SLOTS


def cache_dir() -> Path:
    return Path(settings.PATHS.root) / "cache" / "live"


def _trim_cache(keep: Path) -> None:
    limit = settings.VIGIL.live.transcode_cache_mb * 1024 * 1024
    try:
        files = [p for p in cache_dir().glob("*.mp4") if p.is_file()]
        stats = [(p, p.stat()) for p in files]
    except OSError:
        return
    total = sum(st.st_size for _p, st in stats)
    for p, st in sorted(stats, key=lambda item: item[1].st_atime):
        if total <= limit:
            break
        if p == keep:
            continue
        try:
            p.unlink()
            total -= st.st_size
        except OSError:
            pass


def transcoded(segment: Segment, source: Path, wait: float = 15.0) -> Path:
    """The H.264 version of an H.265 segment file (made once, then cached)."""
    height = settings.VIGIL.live.transcode_height
    target = cache_dir() / f"{segment.sha256 or segment.pk}-{height}.mp4"
    if target.is_file():
        os.utime(target)
        return target
    slots = _slots()
    if slots is None:
        raise TranscodeBusy(0)
    with _SLOTS_LOCK:
        key_lock = _KEY_LOCKS.setdefault(str(target), threading.Lock())
    with key_lock:
        if target.is_file():
            return target
        if not slots.acquire(timeout=wait):
            raise TranscodeBusy(settings.VIGIL.live.max_playback_transcodes)
        try:
            cpu = transcode_segment(source, target, height=height)
        finally:
            slots.release()
        TRANSCODE_STATS["segments"] += 1
        TRANSCODE_STATS["cpu_seconds"] += cpu
        log.info("transcoded %s for playback (%.2f CPU s)", segment.path, cpu)
    _trim_cache(target)
    return target


# ------------------------------------------------------------------------------ bytes
def segment_bytes(
    segment: Segment, origin: datetime, start: datetime, end: datetime, at: float
) -> SegmentBytes:
    """The init segment and the fragments of ``segment`` from the keyframe at or before
    ``at`` (seconds into the file) to its end, kept within the playback range."""
    source = Path(segment.volume.path) / segment.path
    if not source.is_file():
        raise FootageMissing(segment.path)
    is_transcoded = segment.codec != "h264"
    path = transcoded(segment, source) if is_transcoded else source
    info = scan_cached(path)
    if not info.fragments:
        raise FootageMissing(segment.path)
    scale = info.timescale
    # The playback range in this file's decode time (seconds).
    lo = max(at, (start - segment.start).total_seconds())
    hi = (end - segment.start).total_seconds()
    first = 0
    for i, frag in enumerate(info.fragments):
        if frag.base_decode_time / scale > lo + 1e-6:
            break
        if frag.keyframe:
            first = i
    last = len(info.fragments)
    for i in range(first + 1, len(info.fragments)):
        if info.fragments[i].base_decode_time / scale >= hi:
            last = i
            break
    frags = info.fragments[first:last]
    begin = frags[0].offset
    stop = frags[-1].offset + frags[-1].size
    with open(path, "rb") as f:
        init = f.read(info.init_size)
        f.seek(begin)
        body = f.read(stop - begin)
    return SegmentBytes(
        data=init + body,
        codec=codecs_of(info),
        offset=_seconds(origin, segment.start),
        first=frags[0].base_decode_time / scale,
        last=(frags[-1].base_decode_time + frags[-1].duration) / scale,
        transcoded=is_transcoded,
    )
