"""Evidence export: one playable MP4 clip per continuous stretch of a camera's recording,
assembled by stream copy from the recorder's fragmented segments and trimmed to a UTC
range to within one frame.

The recorder writes one fragmented MP4 per ~10 s whose decode times start at 0 (see
``docs/design/media-engine.md``). An export needs one file a recipient can play and a
court can check, covering exactly the granted range:

* **Stream copy.** The coded samples are copied byte for byte; only the container is
  rebuilt. The output is a plain (non-fragmented) MP4 with the ``moov`` first
  ("faststart"), so players seek at once and the sample tables are in one place.
* **One timeline, anchored to UTC.** Segment *j* is placed at
  ``round((start_utc[j] - origin) * timescale)``, not at the sum of the previous
  durations: the recorder's clock steering (≤ 500 ppm) would otherwise drift by up to
  1.8 s an hour. The last sample of each segment absorbs the difference (milliseconds).
* **Trimming.** Cameras send a keyframe every ~2 s and every keyframe starts a fragment,
  so cutting on fragments alone is ±2 s. The clip starts at the last keyframe at or
  before the requested start (decoding needs it) and an **edit list** (``elst``) hides
  the pre-roll: players and ffmpeg present the clip from the requested instant. At the
  end, samples from the requested end on are dropped (no B-frames: nothing later is
  referenced), so the clip ends within one frame of the request. The hidden pre-roll
  (< one keyframe interval) is still in the file; a release that must not contain it
  is re-encoded (:func:`reencode`).
* **Continuity.** A recording gap (> ``max_gap`` seconds between segments) or a change
  of the codec configuration (new resolution, new parameter sets) starts a new clip:
  :func:`plan_spans` returns one :class:`Span` per clip.
* **Integrity.** A segment entirely inside the clip is copied into the clip's ``mdat``
  whole, byte for byte (its own ``ftyp``/``moov``/``moof`` boxes become inert bytes
  there), and the clip's sample tables point at the samples where they lie. The result
  says where each such segment sits, so its ingest SHA-256 (computed by the recorder
  while writing it) can be checked from the clip itself, by anyone, at any time. The
  segments the range cuts (at most the first and the last) contribute only their
  selected samples and are hashed here against their ingest hash. The output is hashed
  while it is written; copying (``copy_file_range``: no pass through user space),
  hashing and flushing run concurrently. The output is fsynced before it is reported.

:func:`reencode` decodes a clip, passes every presented frame through a function (face
redaction, a burned-in watermark) and encodes H.264 again; it is used only when a
release asks for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.media.fmp4 import Mp4Error, _box, _children, _full, _one
from vigil.media.segment import _fsync_dir

__all__ = [
    "ClipResult",
    "ExportError",
    "SegmentIndex",
    "SourceAltered",
    "SourceSegment",
    "SourceUse",
    "Span",
    "assemble_clip",
    "index_segment",
    "plan_spans",
    "reencode",
]

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
MOVIE_TIMESCALE = 1000
_NON_SYNC = 0x00010000
_IOV_MAX = 512
_MAX_PENDING = 6  # segments read ahead of the hashers (bounded memory: ~6 x 2.5 MB)

Progress = Callable[[int, int], None]
Frame = npt.NDArray[np.uint8]


class ExportError(Exception):
    """The clip cannot be assembled; the message says why."""


class SourceAltered(ExportError):
    """A source segment's bytes no longer match the hash taken when it was recorded."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"{path}: SHA-256 {actual} differs from the ingest hash {expected} "
            "(the file changed after it was recorded)"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class SourceSegment:
    """A recorded segment file and where it sits in UTC (seconds since the epoch)."""

    path: Path
    start_utc: float
    end_utc: float
    sha256: str = ""  # the ingest hash; checked while copying when given
    ref: str = ""  # the caller's name for it (e.g. the catalog id), kept in results


@dataclass(frozen=True)
class _Track:
    track_id: int
    kind: str  # "video" or "audio"
    timescale: int
    stsd: bytes  # the complete stsd box, copied into the clip as it is
    width: int
    height: int


@dataclass(frozen=True)
class _Run:
    """The samples of one track in one fragment: contiguous bytes at ``offset``."""

    track_id: int
    offset: int
    dts: list[int]  # decode time of each sample, in the track's timescale, file-relative
    durations: list[int]
    sizes: list[int]
    sync: list[bool]


@dataclass(frozen=True)
class SegmentIndex:
    """A segment's tracks and sample runs (read from the init and the ``moof`` boxes)."""

    source: SourceSegment
    file_size: int
    tracks: dict[int, _Track]
    runs: list[_Run]

    @property
    def video(self) -> _Track:
        for t in self.tracks.values():
            if t.kind == "video":
                return t
        raise ExportError(f"{self.source.path}: no video track")

    @property
    def audio(self) -> _Track | None:
        return next((t for t in self.tracks.values() if t.kind == "audio"), None)

    def layout(self) -> tuple[tuple[str, int, bytes], ...]:
        """What must not change inside one clip: each track's kind, timescale, stsd."""
        return tuple(
            (t.kind, t.timescale, t.stsd)
            for t in sorted(self.tracks.values(), key=lambda t: t.kind)
            if t.kind in ("video", "audio")
        )


@dataclass(frozen=True)
class Span:
    """Segments that make one clip, and the UTC range asked of them."""

    segments: list[SegmentIndex]
    start_utc: float
    end_utc: float


@dataclass(frozen=True)
class ClipResult:
    """What was written."""

    path: Path
    size: int
    sha256: str
    #: the presented range: first and last instant a player shows
    start_utc: float
    end_utc: float
    #: UTC of media time 0 (the pre-roll keyframe); stored in moov/udta/vutc
    origin_utc: float
    frames: int  # video samples in the file, pre-roll included
    preroll_frames: int
    has_audio: bool
    width: int
    height: int
    codec: str
    sources: list[SourceUse] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end_utc - self.start_utc


@dataclass(frozen=True)
class SourceUse:
    """A source segment in a clip: copied whole (``embedded_at``: its byte offset in the
    clip, so anyone can hash that range against the ingest hash), or in part (then it
    was hashed at export: ``checked_sha256``)."""

    segment: SourceSegment
    size: int
    checked_sha256: str = ""  # "" when not hashed at export
    embedded_at: int | None = None


# ------------------------------------------------------------------------ reading


def _u32(b: memoryview | bytes, pos: int) -> int:
    return int(struct.unpack_from(">I", b, pos)[0])


def _parse_traks(moov: memoryview) -> tuple[dict[int, _Track], dict[int, tuple[int, int, int]]]:
    """The tracks of an init segment and the defaults of its ``trex`` boxes."""
    boxes = _children(moov)
    trex: dict[int, tuple[int, int, int]] = {}
    tracks: dict[int, _Track] = {}
    for trak in boxes.get(b"trak", []):
        tb = _children(trak)
        tkhd = _one(tb, b"tkhd")
        v1 = tkhd[0] == 1
        track_id = _u32(tkhd, 20 if v1 else 12)
        width = _u32(tkhd, len(tkhd) - 8) >> 16
        height = _u32(tkhd, len(tkhd) - 4) >> 16
        mdia = _children(_one(tb, b"mdia"))
        mdhd = _one(mdia, b"mdhd")
        timescale = _u32(mdhd, 20 if mdhd[0] == 1 else 12)
        handler = bytes(_one(mdia, b"hdlr")[8:12])
        kind = {b"vide": "video", b"soun": "audio"}.get(handler, handler.decode("latin-1"))
        stbl = _children(_one(_children(_one(mdia, b"minf")), b"stbl"))
        stsd = _one(stbl, b"stsd")
        tracks[track_id] = _Track(
            track_id, kind, timescale, _box(b"stsd", bytes(stsd)), width, height
        )
    if b"mvex" in boxes:
        for t in _children(boxes[b"mvex"][0]).get(b"trex", []):
            tid, _idx, d_dur, d_size, d_flags = struct.unpack_from(">5I", t, 4)
            trex[tid] = (d_dur, d_size, d_flags)
    return tracks, trex


def _parse_moof(
    moof: memoryview, moof_offset: int, trex: dict[int, tuple[int, int, int]]
) -> list[_Run]:
    runs: list[_Run] = []
    for traf in _children(moof).get(b"traf", []):
        tb = _children(traf)
        tfhd = _one(tb, b"tfhd")
        flags = _u32(tfhd, 0) & 0xFFFFFF
        track_id = _u32(tfhd, 4)
        d_dur, d_size, d_flags = trex.get(track_id, (0, 0, 0))
        pos = 8
        base = moof_offset  # default-base-is-moof, or (no flag, first traf) the moof too
        if flags & 0x01:
            base = int(struct.unpack_from(">Q", tfhd, pos)[0])
            pos += 8
        if flags & 0x02:
            pos += 4
        if flags & 0x08:
            d_dur = _u32(tfhd, pos)
            pos += 4
        if flags & 0x10:
            d_size = _u32(tfhd, pos)
            pos += 4
        if flags & 0x20:
            d_flags = _u32(tfhd, pos)
        dts = 0
        if b"tfdt" in tb:
            tfdt = tb[b"tfdt"][0]
            dts = int(struct.unpack_from(">Q" if tfdt[0] == 1 else ">I", tfdt, 4)[0])
        for trun in tb.get(b"trun", []):
            tflags = _u32(trun, 0) & 0xFFFFFF
            n = _u32(trun, 4)
            p = 8
            data_offset = 0
            if tflags & 0x01:
                data_offset = int(struct.unpack_from(">i", trun, p)[0])
                p += 4
            first_flags: int | None = None
            if tflags & 0x04:
                first_flags = _u32(trun, p)
                p += 4
            if tflags & 0x800:
                raise ExportError("composition time offsets (B-frames) are not supported")
            run_dts: list[int] = []
            durations: list[int] = []
            sizes: list[int] = []
            sync: list[bool] = []
            for i in range(n):
                dur, size, sflags = d_dur, d_size, d_flags
                if tflags & 0x100:
                    dur = _u32(trun, p)
                    p += 4
                if tflags & 0x200:
                    size = _u32(trun, p)
                    p += 4
                if tflags & 0x400:
                    sflags = _u32(trun, p)
                    p += 4
                if i == 0 and first_flags is not None:
                    sflags = first_flags
                run_dts.append(dts)
                durations.append(dur)
                sizes.append(size)
                sync.append(not sflags & _NON_SYNC)
                dts += dur
            runs.append(_Run(track_id, base + data_offset, run_dts, durations, sizes, sync))
    return runs


def index_segment(source: SourceSegment) -> SegmentIndex:
    """Read a segment's init and fragment headers (not the sample data), in one pass."""
    tracks: dict[int, _Track] | None = None
    trex: dict[int, tuple[int, int, int]] = {}
    runs: list[_Run] = []
    complete = 0
    try:
        with open(source.path, "rb", buffering=0) as f:
            file_size = os.fstat(f.fileno()).st_size
            pos = 0
            pending: list[_Run] = []
            while pos + 8 <= file_size:
                f.seek(pos)
                head = f.read(16)
                size, kind = struct.unpack_from(">I4s", head)
                hsize = 8
                if size == 1:
                    size = int(struct.unpack_from(">Q", head, 8)[0])
                    hsize = 16
                elif size == 0:
                    size = file_size - pos
                if size < hsize or pos + size > file_size:
                    break  # a torn tail: only complete fragments count
                if kind == b"moov":
                    f.seek(pos + hsize)
                    tracks, trex = _parse_traks(memoryview(f.read(size - hsize)))
                    complete = pos + size
                elif kind == b"moof" and tracks is not None:
                    f.seek(pos + hsize)
                    pending = _parse_moof(memoryview(f.read(size - hsize)), pos, trex)
                elif kind == b"mdat" and pending:
                    if any(r.offset < pos + hsize or r.offset + sum(r.sizes) > pos + size
                           for r in pending):  # fmt: skip
                        raise ExportError(f"{source.path}: sample data outside its mdat")
                    runs += pending
                    pending = []
                    complete = pos + size
                pos += size
    except (OSError, Mp4Error, struct.error, IndexError) as exc:
        raise ExportError(f"{source.path}: cannot be read: {exc}") from exc
    if tracks is None:
        raise ExportError(f"{source.path}: no complete init segment")
    return SegmentIndex(source, complete, tracks, runs)


def plan_spans(
    segments: Sequence[SourceSegment],
    start_utc: float,
    end_utc: float,
    *,
    max_gap: float = 0.5,
) -> list[Span]:
    """Group the segments overlapping [start_utc, end_utc) into clips: a new clip after
    a gap longer than ``max_gap`` seconds or where the codec configuration changes."""
    if end_utc <= start_utc:
        raise ExportError("the time range is empty")
    chosen = sorted(
        (s for s in segments if s.start_utc < end_utc and s.end_utc > start_utc),
        key=lambda s: s.start_utc,
    )
    spans: list[list[SegmentIndex]] = []
    previous: SegmentIndex | None = None
    for seg in chosen:
        idx = index_segment(seg)
        if not any(r.track_id == idx.video.track_id for r in idx.runs):
            continue
        if (
            previous is None
            or seg.start_utc - previous.source.end_utc > max_gap
            or idx.layout() != previous.layout()
        ):
            spans.append([])
        spans[-1].append(idx)
        previous = idx
    return [Span(s, start_utc, end_utc) for s in spans]


# ------------------------------------------------------------------------ selection


@dataclass
class _Chunk:
    track_id: int
    src: int  # index of the segment in the span
    offset: int  # in the source file
    length: int
    samples: int
    out_offset: int = 0  # in the mdat payload


@dataclass
class _Table:
    track: _Track
    dts: list[int] = field(default_factory=list)  # clip-relative
    durations: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    sync: list[bool] = field(default_factory=list)
    chunks: list[_Chunk] = field(default_factory=list)


@dataclass
class _Selection:
    origin_utc: float
    present_start: float
    present_end: float
    video: _Table
    audio: _Table | None
    chunks: list[_Chunk]  # every chunk in output order
    preroll: int
    #: what goes into the mdat, in order: (segment index, offset in it, length); a
    #: segment whose samples are all selected is copied whole (offset 0, file size)
    copies: list[tuple[int, int, int]] = field(default_factory=list)
    #: segment index -> offset of its embedded copy in the mdat payload
    embedded: dict[int, int] = field(default_factory=dict)


def _select(span: Span) -> _Selection:
    segs = span.segments
    video_track = segs[0].video
    vts = video_track.timescale
    # Every video sample with its UTC instant: (utc, seg index, run, sample index).
    candidates: list[tuple[float, int, _Run, int]] = []
    for j, idx in enumerate(segs):
        s0 = idx.source.start_utc
        for run in idx.runs:
            if run.track_id != video_track.track_id:
                continue
            for i, d in enumerate(run.dts):
                candidates.append((s0 + d / vts, j, run, i))
    if not candidates:
        raise ExportError("no video in the range")
    first_t = candidates[0][0]
    present_start = max(span.start_utc, first_t)
    inside = [c for c in candidates if c[0] < span.end_utc]
    if not inside:
        raise ExportError("no video in the range")
    preroll = 0
    for k, (t, _j, run, i) in enumerate(inside):
        if t > present_start + 1e-6:
            break
        if run.sync[i]:
            preroll = k
    chosen = inside[preroll:]
    if not chosen or not chosen[0][2].sync[chosen[0][3]]:
        raise ExportError("the clip would not start on a keyframe")
    origin = chosen[0][0]
    present_start = max(present_start, origin)

    def offset_of(j: int, ts: int) -> int:
        return round((segs[j].source.start_utc - origin) * ts)

    # Video samples, their runs grouped into chunks.
    video = _Table(video_track)
    chunks: list[_Chunk] = []
    chosen_keys = {(id(c[2]), c[3]) for c in chosen}
    audio_track = segs[0].audio
    audio = _Table(audio_track) if audio_track is not None else None
    last_video_t = chosen[-1][0]
    last_video_end = last_video_t + chosen[-1][2].durations[chosen[-1][3]] / vts
    present_end = min(span.end_utc, last_video_end)
    if present_end <= present_start:
        raise ExportError("no video in the range")
    partial: set[int] = set()  # segments of which some sample is left out
    for j, idx in enumerate(segs):
        s0 = idx.source.start_utc
        for run in idx.runs:
            track = idx.tracks.get(run.track_id)
            if track is None:
                continue
            if track.kind == "video" and run.track_id == video_track.track_id:
                picked = [i for i in range(len(run.dts)) if (id(run), i) in chosen_keys]
                table = video
            elif audio is not None and track.kind == "audio":
                ats = track.timescale
                picked = [
                    i for i, d in enumerate(run.dts) if origin - 1e-6 <= s0 + d / ats < present_end
                ]
                table = audio
            else:
                continue
            if len(picked) != len(run.dts):
                partial.add(j)
            if not picked:
                continue
            # picked is a contiguous prefix or suffix of the run (times only increase)
            lo, hi = picked[0], picked[-1] + 1
            off = run.offset + sum(run.sizes[:lo])
            length = sum(run.sizes[lo:hi])
            base = offset_of(j, table.track.timescale)
            for i in range(lo, hi):
                table.dts.append(base + run.dts[i])
                table.durations.append(run.durations[i])
                table.sizes.append(run.sizes[i])
                table.sync.append(run.sync[i])
            chunk = _Chunk(run.track_id, j, off, length, hi - lo)
            table.chunks.append(chunk)
            chunks.append(chunk)
    for tab in (video, audio):
        if tab is None:
            continue
        # Durations from the UTC-anchored decode times; the last sample keeps its own.
        for i in range(len(tab.dts) - 1):
            tab.durations[i] = max(1, tab.dts[i + 1] - tab.dts[i])
    if audio is not None and not audio.dts:
        audio = None
        chunks = [c for c in chunks if c.track_id == video_track.track_id]
    # The mdat: a segment entirely inside the clip goes in whole, byte for byte (its
    # init and moof boxes are inert bytes there), so the package itself shows it is the
    # recorder's file; of the others, only the selected samples.
    copies: list[tuple[int, int, int]] = []
    embedded: dict[int, int] = {}
    pos = 0
    for j in sorted({c.src for c in chunks}):
        mine = [c for c in chunks if c.src == j]
        if j not in partial:
            embedded[j] = pos
            for c in mine:
                c.out_offset = pos + c.offset
            copies.append((j, 0, segs[j].file_size))
            pos += segs[j].file_size
            continue
        for c in mine:
            c.out_offset = pos
            copies.append((j, c.offset, c.length))
            pos += c.length
    preroll = _count_preroll(video, origin, present_start)
    return _Selection(
        origin, present_start, present_end, video, audio, chunks, preroll, copies, embedded
    )


def _count_preroll(video: _Table, origin: float, present_start: float) -> int:
    """Video samples before the presented start (hidden by the edit list)."""
    limit = round((present_start - origin) * video.track.timescale)
    return sum(1 for d in video.dts if d < limit)


# ------------------------------------------------------------------------ writing


def _runs_of(values: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v:
            out[-1] = (out[-1][0] + 1, v)
        else:
            out.append((1, v))
    return out


def _stbl(table: _Table, base: int) -> bytes:
    stts = _runs_of(table.durations)
    parts = [
        table.track.stsd,
        _full(
            b"stts",
            0,
            0,
            struct.pack(">I", len(stts)),
            *(struct.pack(">II", n, d) for n, d in stts),
        ),
    ]
    if table.track.kind == "video" and not all(table.sync):
        keys = [i + 1 for i, s in enumerate(table.sync) if s]
        parts.append(
            _full(b"stss", 0, 0, struct.pack(">I", len(keys)), struct.pack(f">{len(keys)}I", *keys))
        )
    per_chunk = _runs_of([c.samples for c in table.chunks])
    entries: list[bytes] = []
    first = 1
    for n, samples in per_chunk:
        entries.append(struct.pack(">III", first, samples, 1))
        first += n
    parts.append(_full(b"stsc", 0, 0, struct.pack(">I", len(entries)), *entries))
    sizes = table.sizes
    if sizes and all(s == sizes[0] for s in sizes):
        parts.append(_full(b"stsz", 0, 0, struct.pack(">II", sizes[0], len(sizes))))
    else:
        parts.append(
            _full(
                b"stsz",
                0,
                0,
                struct.pack(">II", 0, len(sizes)),
                struct.pack(f">{len(sizes)}I", *sizes),
            )
        )
    offsets = [base + c.out_offset for c in table.chunks]
    parts.append(
        _full(
            b"co64",
            0,
            0,
            struct.pack(">I", len(offsets)),
            struct.pack(f">{len(offsets)}Q", *offsets),
        )
    )
    return _box(b"stbl", *parts)


def _elst(edits: list[tuple[int, int]]) -> bytes:
    """Edit list entries (duration in the movie timescale, media time or -1 = empty)."""
    v1 = any(d > 0xFFFFFFFF or abs(m) > 0x7FFFFFFF for d, m in edits)
    body = [struct.pack(">I", len(edits))]
    for d, m in edits:
        body.append(struct.pack(">QqHH", d, m, 1, 0) if v1 else struct.pack(">IiHH", d, m, 1, 0))
    return _box(b"edts", _full(b"elst", 1 if v1 else 0, 0, *body))


def _trak(table: _Table, base: int, present_ms: int, media_start: int) -> bytes:
    track = table.track
    media_duration = sum(table.durations)
    big = max(media_duration, present_ms) > 0xFFFFFFFF
    if track.kind == "video":
        tkhd_tail = struct.pack(">hhhH", 0, 0, 0, 0) + _MATRIX
        tkhd_tail += struct.pack(">II", track.width << 16, track.height << 16)
    else:
        tkhd_tail = struct.pack(">hhhH", 0, 1, 0x0100, 0) + _MATRIX + struct.pack(">II", 0, 0)
    if big:
        tkhd = _full(b"tkhd", 1, 3, struct.pack(">QQIIQ", 0, 0, track.track_id, 0, present_ms),
                     bytes(8), tkhd_tail)  # fmt: skip
        mdhd = _full(b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, track.timescale,
                                                 media_duration, 0x55C4, 0))  # fmt: skip
    else:
        tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, track.track_id, 0, present_ms),
                     bytes(8), tkhd_tail)  # fmt: skip
        mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, track.timescale,
                                                 media_duration, 0x55C4, 0))  # fmt: skip
    if media_start >= 0:
        edits = [(present_ms, media_start)]
    else:  # the track starts after the presented start: an empty edit first
        empty = round(-media_start * MOVIE_TIMESCALE / track.timescale)
        edits = [(empty, -1), (max(0, present_ms - empty), 0)]
    if track.kind == "video":
        hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
        header = _full(b"vmhd", 0, 1, bytes(8))
    else:
        hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"soun"), b"SoundHandler\x00")
        header = _full(b"smhd", 0, 0, bytes(4))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    minf = _box(b"minf", header, dinf, _stbl(table, base))
    return _box(b"trak", tkhd, _elst(edits), _box(b"mdia", mdhd, hdlr, minf))


def _header(sel: _Selection, mdat_payload: int) -> bytes:
    video = sel.video.track
    brands = [b"isom", b"iso2", b"mp41"]
    if b"avc1" in video.stsd[:24] or b"avc3" in video.stsd[:24]:
        brands.append(b"avc1")
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), *brands)
    present_ms = max(1, round((sel.present_end - sel.present_start) * MOVIE_TIMESCALE))
    big_mdat = mdat_payload + 8 > 0xFFFFFFFF
    mdat_header = (
        struct.pack(">I4sQ", 1, b"mdat", mdat_payload + 16)
        if big_mdat
        else struct.pack(">I4s", mdat_payload + 8, b"mdat")
    )

    def build(base: int) -> bytes:
        next_id = max(t.track.track_id for t in (sel.video, sel.audio) if t is not None) + 1
        mvhd = _full(
            b"mvhd", 0, 0,
            struct.pack(">IIIIIH", 0, 0, MOVIE_TIMESCALE, present_ms, 0x00010000, 0x0100),
            bytes(10), _MATRIX, bytes(24), struct.pack(">I", next_id),
        )  # fmt: skip
        v_start = round((sel.present_start - sel.origin_utc) * video.timescale)
        traks = [_trak(sel.video, base, present_ms, v_start)]
        if sel.audio is not None:
            ats = sel.audio.track.timescale
            a_first = sel.audio.dts[0]
            a_start = round((sel.present_start - sel.origin_utc) * ats) - a_first
            traks.append(_trak(sel.audio, base, present_ms, a_start))
        udta = _box(b"udta", _box(b"vutc", struct.pack(">Q", round(sel.origin_utc * 1000))))
        return _box(b"moov", mvhd, *traks, udta)

    # The chunk offsets depend on the moov's size, which does not depend on them (co64).
    moov = build(0)
    base = len(ftyp) + len(moov) + len(mdat_header)
    moov = build(base)
    assert len(ftyp) + len(moov) + len(mdat_header) == base
    return ftyp + moov + mdat_header


def _writev_all(fd: int, parts: Sequence[memoryview | bytes]) -> None:
    pending: deque[memoryview] = deque(memoryview(p) for p in parts if len(p))
    while pending:
        batch = [pending[i] for i in range(min(_IOV_MAX, len(pending)))]
        n = os.writev(fd, batch)
        while n and pending:
            head = pending[0]
            if n >= len(head):
                n -= len(head)
                pending.popleft()
            else:
                pending[0] = head[n:]
                n = 0


class _Copier:
    """Copies byte ranges of a source file to the output: in the kernel with
    ``copy_file_range`` (no pass through user space), else with ``writev``."""

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.kernel = hasattr(os, "copy_file_range")

    def copy(self, src_fd: int, view: memoryview, ranges: Sequence[tuple[int, int]]) -> None:
        if self.kernel:
            try:
                for offset, length in ranges:
                    done = 0
                    while done < length:
                        n = os.copy_file_range(src_fd, self.out_fd, length - done, offset + done)
                        if n == 0:
                            raise ExportError("source file shorter than its index")
                        done += n
                return
            except OSError:  # other filesystem, old kernel: the portable way from here on
                self.kernel = False
                # (a partial range may have been written: rewind to where it started)
                raise _Retry from None
        _writev_all(self.out_fd, [view[o : o + n] for o, n in ranges])


class _Retry(Exception):
    pass


def _sha256_hex(data: memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def assemble_clip(
    span: Span,
    out: Path,
    *,
    progress: Progress | None = None,
    verify_sources: bool = True,
    verify_embedded: bool = False,
    fsync: bool = True,
) -> ClipResult:
    """Write the clip for ``span`` to ``out`` (which must not exist).

    A segment entirely inside the clip is copied whole into the clip's ``mdat`` (its
    samples are referenced where they lie); the result lists its offset so its ingest
    hash can be checked from the clip itself, by anyone, later. A segment cut by the
    range (at most the first and the last) contributes only its selected samples and is
    hashed here, against its ingest hash (``verify_sources``); ``verify_embedded`` hashes
    the whole ones here too. A mismatch raises :class:`SourceAltered` and removes the
    partial output. ``progress(done, total)`` is called with source bytes after each
    segment; an exception it raises aborts the export the same way.

    The work overlaps: the main thread maps each source and has the kernel copy the
    chosen bytes (``copy_file_range``); one thread hashes the output from the same mapped
    pages, another the sources to check, a third flushes written data to disk every
    64 MB so that the final fsync does not wait for the whole file.
    """
    import mmap

    sel = _select(span)
    mdat_payload = sum(n for _j, _o, n in sel.copies)
    header = _header(sel, mdat_payload)
    by_source: dict[int, list[tuple[int, int]]] = {}
    for j, offset, length in sel.copies:
        by_source.setdefault(j, []).append((offset, length))
    order = sorted(by_source)
    total = sum(span.segments[j].file_size for j in order)
    out_hash = hashlib.sha256()
    out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    copier = _Copier(out_fd)
    done = 0
    checks: dict[int, Future[str]] = {}
    flush_every = 64 << 20
    try:
        with (
            ThreadPoolExecutor(1, thread_name_prefix="clip-hash") as out_pool,
            ThreadPoolExecutor(1, thread_name_prefix="source-hash") as src_pool,
            ThreadPoolExecutor(1, thread_name_prefix="clip-flush") as flush_pool,
        ):
            pending: deque[tuple[Any, ...]] = deque()
            flushing: Future[None] | None = None
            written = flushed = 0
            _writev_all(out_fd, [header])
            out_hash.update(header)
            written += len(header)
            for j in order:
                seg = span.segments[j]
                src = seg.source
                ranges = by_source[j]
                src_fd = os.open(src.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    size = os.fstat(src_fd).st_size
                    if size < seg.file_size:
                        raise SourceAltered(src.path, src.sha256, f"(now {size} bytes)")
                    mapped = mmap.mmap(
                        src_fd,
                        seg.file_size,
                        flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                        prot=mmap.PROT_READ,
                    )
                    view = memoryview(mapped)
                    futures: list[Future[Any]] = []
                    embedded = j in sel.embedded
                    if src.sha256 and (verify_embedded if embedded else verify_sources):
                        checks[j] = src_pool.submit(_sha256_hex, view)
                        futures.append(checks[j])
                    futures.append(
                        out_pool.submit(_hash_views, out_hash, [view[o : o + n] for o, n in ranges])
                    )
                    start = os.lseek(out_fd, 0, os.SEEK_CUR)
                    try:
                        copier.copy(src_fd, view, ranges)
                    except _Retry:
                        os.lseek(out_fd, start, os.SEEK_SET)
                        os.ftruncate(out_fd, start)
                        copier.copy(src_fd, view, ranges)
                finally:
                    os.close(src_fd)
                pending.append((*futures, _Release(view, mapped)))
                written += sum(n for _o, n in ranges)
                if (
                    fsync
                    and written - flushed >= flush_every
                    and (flushing is None or flushing.done())
                ):
                    flushing = flush_pool.submit(os.fdatasync, out_fd)
                    flushed = written
                while len(pending) > _MAX_PENDING:
                    _settle(pending.popleft())
                done += seg.file_size
                if progress is not None:
                    progress(done, total)
            while pending:
                _settle(pending.popleft())
            for j, check in checks.items():
                src = span.segments[j].source
                if check.result() != src.sha256:
                    raise SourceAltered(src.path, src.sha256, check.result())
            if flushing is not None:
                flushing.result()
        if fsync:
            os.fsync(out_fd)
    except BaseException:
        os.close(out_fd)
        out.unlink(missing_ok=True)
        raise
    os.close(out_fd)
    if fsync:
        _fsync_dir(out.parent)
    sources = [
        SourceUse(
            segment=span.segments[j].source,
            size=span.segments[j].file_size,
            checked_sha256=checks[j].result() if j in checks else "",
            embedded_at=len(header) + sel.embedded[j] if j in sel.embedded else None,
        )
        for j in order
    ]
    video = sel.video.track
    return ClipResult(
        path=out,
        size=len(header) + mdat_payload,
        sha256=out_hash.hexdigest(),
        start_utc=sel.present_start,
        end_utc=sel.present_end,
        origin_utc=sel.origin_utc,
        frames=len(sel.video.dts),
        preroll_frames=sel.preroll,
        has_audio=sel.audio is not None,
        width=video.width,
        height=video.height,
        codec=_codec_name(video.stsd),
        sources=sources,
    )


def _hash_views(h: Any, views: Sequence[memoryview]) -> None:
    for v in views:
        h.update(v)


@dataclass
class _Release:
    """Closes a source mapping once nothing reads it any more."""

    view: memoryview
    mapped: Any

    def close(self) -> None:
        self.view.release()
        with contextlib.suppress(BufferError):  # a slice still referenced: the GC closes it
            self.mapped.close()


def _settle(item: tuple[Any, ...]) -> None:
    for part in item[:-1]:
        part.result()
    item[-1].close()


def _codec_name(stsd: bytes) -> str:
    fourcc = stsd[20:24]
    return {b"avc1": "h264", b"avc3": "h264", b"hvc1": "h265", b"hev1": "h265"}.get(
        fourcc, fourcc.decode("latin-1")
    )


# ------------------------------------------------------------------------ re-encoding


@dataclass(frozen=True)
class EncodeResult:
    path: Path
    frames: int
    width: int
    height: int
    duration: float


def _bgr(frame: Any, width: int | None = None, height: int | None = None) -> Frame:
    if width is not None and height is not None:
        img = frame.to_ndarray(format="bgr24", width=width, height=height)
    else:
        img = frame.to_ndarray(format="bgr24")
    return np.asarray(img, dtype=np.uint8)


def decode_frames(path: Path, *, height: int | None = None) -> Iterator[Frame]:
    """The presented frames of a clip as BGR arrays (pre-roll hidden by the edit list is
    not returned), optionally scaled to ``height`` (keeping the aspect ratio)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if height is not None and frame.height != height:
                width = round(frame.width * height / frame.height / 2) * 2
                yield _bgr(frame, width, height)
            else:
                yield _bgr(frame)


def reencode(
    src: Path,
    out: Path,
    transform: Callable[[int, Frame], Frame],
    *,
    crf: int = 20,
    preset: str = "veryfast",
    progress: Callable[[int], None] | None = None,
) -> EncodeResult:
    """Decode ``src``, pass each presented frame (BGR) with its index through
    ``transform`` and encode the results as H.264 (yuv420p, same frame timing, keyframe
    every 2 s) into an MP4 at ``out``, ``moov`` first. Sound is not carried over."""
    import av

    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    frames = 0
    width = height = 0
    last_pts = 0.0
    with av.open(str(src)) as source:
        vin = source.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.guessed_rate or Fraction(10)
        time_base = Fraction(1, 90000)
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as sink:
            vout: Any = None
            first_pts: int | None = None
            for frame in source.decode(vin):
                img = transform(frames, _bgr(frame))
                if vout is None:
                    height, width = img.shape[:2]
                    vout = sink.add_stream("libx264", rate=rate)
                    vout.width, vout.height = width, height
                    vout.pix_fmt = "yuv420p"
                    vout.time_base = time_base
                    vout.codec_context.time_base = time_base
                    gop = max(1, round(float(rate) * 2))
                    vout.options = {
                        "crf": str(crf),
                        "preset": preset,
                        "g": str(gop),
                        "bf": "0",
                    }
                pts_s = (
                    float(frame.pts * frame.time_base)
                    if frame.pts is not None and frame.time_base is not None
                    else frames / float(rate)
                )
                if first_pts is None:
                    first_pts = round(pts_s * 90000)
                out_frame = av.VideoFrame.from_ndarray(img, format="bgr24")
                out_frame.pts = round(pts_s * 90000) - first_pts
                out_frame.time_base = time_base
                last_pts = out_frame.pts / 90000
                for packet in vout.encode(out_frame):
                    sink.mux(packet)
                frames += 1
                if progress is not None:
                    progress(frames)
            if vout is None:
                raise ExportError(f"{src}: no frame to encode")
            for packet in vout.encode(None):
                sink.mux(packet)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    duration = last_pts + 1 / float(rate)
    return EncodeResult(out, frames, width, height, duration)
