"""Fragmented MP4 (ISO/IEC 14496-12) writer, reader/indexer and live muxer.

A Vigil segment file is ``ftyp`` + ``moov`` (with ``mvex``, no samples) followed by
``moof`` + ``mdat`` pairs. A file cut off anywhere stays decodable up to its last
complete fragment, and the same bytes feed Media Source Extensions and HLS (fMP4)
without remuxing.

* :func:`init_segment` / :func:`fragment` build the boxes.
* :func:`scan` indexes a file (even a truncated one): init size, tracks and codecs, and
  each complete fragment's offset, size, decode time, duration and keyframe flag.
* :class:`LiveMuxer` turns frames into an init segment plus one fragment per frame for
  low-latency live view over MSE.

Decode times are per file: the first fragment of a segment starts at decode time 0 (like
``ffmpeg -reset_timestamps 1``); the segment's UTC start is kept in the catalog and in a
small ``udta/vutc`` box of the init segment (milliseconds since the Unix epoch), which
players ignore and :func:`scan` reads back for crash recovery.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from vigil.media.codecs import AacConfig, CodecError, VideoParams, parse_aac_config
from vigil.media.rtp import Frame

__all__ = [
    "AUDIO_TRACK_ID",
    "VIDEO_TRACK_ID",
    "FragmentInfo",
    "LiveMuxer",
    "Mp4Error",
    "Sample",
    "ScanResult",
    "TrackInfo",
    "TrackRun",
    "fragment",
    "init_segment",
    "scan",
]

VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2
VIDEO_TIMESCALE = 90000
SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (independent)
NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_EPOCH_1904 = 2082844800


class Mp4Error(ValueError):
    """The file is not a readable fragmented MP4."""


class Sample(NamedTuple):
    """One sample to put in a fragment (duration in the track's timescale)."""

    data: bytes
    duration: int
    keyframe: bool


@dataclass(slots=True)
class TrackRun:
    """The samples of one track inside one fragment."""

    track_id: int
    base_decode_time: int
    samples: list[Sample]


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    size = bytes(
        (0x80 | (n >> 21) & 0x7F, 0x80 | (n >> 14) & 0x7F, 0x80 | (n >> 7) & 0x7F, n & 0x7F)
    )
    return bytes((tag,)) + size + payload


def _mp4_time(utc: float | None) -> int:
    return int(utc + _EPOCH_1904) & 0xFFFFFFFF if utc is not None else 0


def _video_trak(params: VideoParams, created: int) -> bytes:
    width, height = params.width, params.height
    tkhd = _full(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", created, created, VIDEO_TRACK_ID, 0, 0),
        bytes(8), struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", created, created, VIDEO_TIMESCALE, 0, 0x55C4, 0)
    )
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
    name = b"Vigil"
    entry = _box(
        params.sample_entry,
        bytes(6), struct.pack(">H", 1), bytes(16),
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        bytes((len(name),)) + name + bytes(31 - len(name)),
        struct.pack(">Hh", 0x18, -1),
        _box(b"hvcC" if params.codec == "h265" else b"avcC", params.config_record),
    )  # fmt: skip
    return _trak(tkhd, mdhd, hdlr, _full(b"vmhd", 0, 1, bytes(8)), entry)


def _audio_trak(config: AacConfig, created: int) -> bytes:
    tkhd = _full(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", created, created, AUDIO_TRACK_ID, 0, 0),
        bytes(8), struct.pack(">hhhH", 0, 1, 0x0100, 0), _MATRIX, struct.pack(">II", 0, 0),
    )  # fmt: skip
    rate = config.sample_rate
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", created, created, rate, 0, 0x55C4, 0))
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"soun"), b"SoundHandler\x00")
    dec_config = _descriptor(
        4, struct.pack(">BB3sII", 0x40, 0x15, bytes(3), 0, 0) + _descriptor(5, config.config)
    )
    es = _descriptor(
        3, struct.pack(">HB", AUDIO_TRACK_ID, 0) + dec_config + _descriptor(6, b"\x02")
    )
    entry = _box(
        b"mp4a",
        bytes(6), struct.pack(">H", 1), bytes(8),
        struct.pack(">HHHHI", max(1, config.channels), 16, 0, 0, rate << 16 if rate < 65536 else 0),
        _full(b"esds", 0, 0, es),
    )  # fmt: skip
    return _trak(tkhd, mdhd, hdlr, _full(b"smhd", 0, 0, bytes(4)), entry)


def _trak(tkhd: bytes, mdhd: bytes, hdlr: bytes, media_header: bytes, entry: bytes) -> bytes:
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        _full(b"stts", 0, 0, struct.pack(">I", 0)),
        _full(b"stsc", 0, 0, struct.pack(">I", 0)),
        _full(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, _box(b"minf", media_header, dinf, stbl)))


def init_segment(
    video: VideoParams, audio: AacConfig | None = None, *, start_utc: float | None = None
) -> bytes:
    """``ftyp`` + ``moov`` for a video track (id 1, 90 kHz) and an optional AAC track (id 2).

    ``start_utc`` (seconds since the Unix epoch) is stored in ``moov/udta/vutc``.
    """
    brands = [b"isom", b"iso6", b"iso2", b"mp41"]
    if video.codec == "h264":
        brands.append(b"avc1")
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), *brands)
    created = _mp4_time(start_utc)
    next_id = AUDIO_TRACK_ID + 1 if audio else VIDEO_TRACK_ID + 1
    mvhd = _full(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH", created, created, 1000, 0, 0x00010000, 0x0100),
        bytes(10), _MATRIX, bytes(24), struct.pack(">I", next_id),
    )  # fmt: skip
    traks = [_video_trak(video, created)]
    trexs = [_full(b"trex", 0, 0, struct.pack(">IIIII", VIDEO_TRACK_ID, 1, 0, 0, 0))]
    if audio is not None:
        traks.append(_audio_trak(audio, created))
        trexs.append(_full(b"trex", 0, 0, struct.pack(">IIIII", AUDIO_TRACK_ID, 1, 0, 0, 0)))
    extra = []
    if start_utc is not None:
        extra.append(_box(b"udta", _box(b"vutc", struct.pack(">Q", round(start_utc * 1000)))))
    moov = _box(b"moov", mvhd, *traks, _box(b"mvex", *trexs), *extra)
    return ftyp + moov


def fragment(sequence: int, runs: Sequence[TrackRun]) -> bytes:
    """One ``moof`` + ``mdat`` holding ``runs`` (one per track, in mdat order)."""
    runs = [r for r in runs if r.samples]
    moof_size = 24 + sum(64 + 12 * len(r.samples) for r in runs)
    offset = moof_size + 8
    trafs: list[bytes] = []
    payload: list[bytes] = []
    for run in runs:
        samples = run.samples
        n = len(samples)
        entries: list[int] = []
        size = 0
        for s in samples:
            length = len(s.data)
            entries += (s.duration, length, SYNC_FLAGS if s.keyframe else NON_SYNC_FLAGS)
            size += length
            payload.append(s.data)
        trafs.append(
            struct.pack(
                f">I4sI4sII I4sIQ I4sIIi{3 * n}I",
                64 + 12 * n,
                b"traf",
                16,
                b"tfhd",
                0x020000,
                run.track_id,
                20,
                b"tfdt",
                0x01000000,
                max(0, run.base_decode_time),
                20 + 12 * n,
                b"trun",
                0x000701,
                n,
                offset,
                *entries,
            )
        )
        offset += size
    mdat_size = offset - moof_size
    head = struct.pack(">I4sI4sII", moof_size, b"moof", 16, b"mfhd", 0, sequence & 0xFFFFFFFF)
    return b"".join([head, *trafs, struct.pack(">I4s", mdat_size, b"mdat"), *payload])


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class TrackInfo:
    """A track of a scanned file."""

    track_id: int
    kind: str  # "video" or "audio"
    timescale: int
    codec: str  # "h264", "h265", "aac" or the sample entry fourcc
    codec_string: str
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    config: bytes = b""


@dataclass(frozen=True)
class FragmentInfo:
    """One complete ``moof`` + ``mdat`` pair (times in the video track's timescale)."""

    offset: int
    size: int
    sequence: int
    base_decode_time: int
    duration: int
    keyframe: bool
    samples: int


@dataclass
class ScanResult:
    """What :func:`scan` found in a (possibly truncated) fragmented MP4 file."""

    file_size: int
    init_size: int
    tracks: list[TrackInfo]
    fragments: list[FragmentInfo] = field(default_factory=list)
    start_utc: float | None = None
    complete_size: int = 0  # bytes up to the end of the last complete fragment
    timescale: int = VIDEO_TIMESCALE

    @property
    def video(self) -> TrackInfo | None:
        """The first video track, if any."""
        return next((t for t in self.tracks if t.kind == "video"), None)

    @property
    def audio(self) -> TrackInfo | None:
        """The first audio track, if any."""
        return next((t for t in self.tracks if t.kind == "audio"), None)

    @property
    def duration(self) -> float:
        """Seconds covered by the complete fragments (video track)."""
        return sum(f.duration for f in self.fragments) / self.timescale

    @property
    def truncated(self) -> bool:
        """True when bytes follow the last complete fragment."""
        return self.file_size > self.complete_size


def _children(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> dict[bytes, list[memoryview]]:
    view = memoryview(data)
    end = len(view) if end is None else end
    out: dict[bytes, list[memoryview]] = {}
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", view, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack_from(">Q", view, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"box {kind!r} overruns its parent")
        out.setdefault(bytes(kind), []).append(view[pos + header : pos + size])
        pos += size
    return out


def _one(boxes: dict[bytes, list[memoryview]], *path: bytes) -> memoryview:
    node: memoryview | None = None
    current = boxes
    for i, kind in enumerate(path):
        items = current.get(kind)
        if not items:
            raise Mp4Error(f"missing box {b'/'.join(path[: i + 1]).decode()}")
        node = items[0]
        if i + 1 < len(path):
            current = _children(node)
    assert node is not None
    return node


def _parse_trak(trak: memoryview) -> tuple[TrackInfo, dict[str, int]]:
    boxes = _children(trak)
    tkhd = _one(boxes, b"tkhd")
    version = tkhd[0]
    track_id = struct.unpack_from(">I", tkhd, 20 if version == 1 else 12)[0]
    mdia = _children(_one(boxes, b"mdia"))
    mdhd = _one(mdia, b"mdhd")
    timescale = struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]
    handler = bytes(_one(mdia, b"hdlr")[8:12])
    stbl = _children(_one(_children(_one(mdia, b"minf")), b"stbl"))
    stsd = _one(stbl, b"stsd")
    entries = _children(stsd, 8)
    if not entries:
        raise Mp4Error("empty stsd")
    fourcc, bodies = next(iter(entries.items()))
    body = bodies[0]
    if handler == b"vide":
        width, height = struct.unpack_from(">HH", body, 24)
        inner = _children(body, 78)
        codec = fourcc.decode(errors="replace")
        codec_string = codec
        config = b""
        try:
            if b"avcC" in inner:
                config = bytes(inner[b"avcC"][0])
                params = params_from_avcc(config)
                codec, codec_string = "h264", params.codec_string
                width, height = params.width, params.height
            elif b"hvcC" in inner:
                config = bytes(inner[b"hvcC"][0])
                params = _params_from_hvcc(config)
                codec, codec_string = "h265", params.codec_string.replace("hvc1", fourcc.decode())
                width, height = params.width, params.height
        except (CodecError, IndexError, struct.error):
            pass
        info = TrackInfo(
            track_id, "video", timescale, codec, codec_string, width, height, config=config
        )
    elif handler == b"soun":
        channels = struct.unpack_from(">H", body, 16)[0]
        inner = _children(body, 28)
        codec, codec_string, rate, config = fourcc.decode(errors="replace"), "", timescale, b""
        esds = inner.get(b"esds")
        if esds:
            config = _asc_from_esds(bytes(esds[0][4:]))
            try:
                aac = parse_aac_config(config)
                codec, codec_string, rate, channels = (
                    "aac",
                    aac.codec_string,
                    aac.sample_rate,
                    aac.channels,
                )
            except CodecError:
                pass
        info = TrackInfo(
            track_id,
            "audio",
            timescale,
            codec,
            codec_string,
            sample_rate=rate,
            channels=channels,
            config=config,
        )
    else:
        info = TrackInfo(
            track_id,
            handler.decode(errors="replace"),
            timescale,
            fourcc.decode(errors="replace"),
            "",
        )
    return info, {"timescale": timescale}


def params_from_avcc(rec: bytes) -> VideoParams:
    """SPS/PPS out of an ``avcC`` decoder configuration record."""
    n_sps = rec[5] & 0x1F
    pos = 6
    sps: list[bytes] = []
    for _ in range(n_sps):
        size = struct.unpack_from(">H", rec, pos)[0]
        sps.append(bytes(rec[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    n_pps = rec[pos]
    pos += 1
    pps: list[bytes] = []
    for _ in range(n_pps):
        size = struct.unpack_from(">H", rec, pos)[0]
        pps.append(bytes(rec[pos + 2 : pos + 2 + size]))
        pos += 2 + size
    return VideoParams(codec="h264", sps=tuple(sps), pps=tuple(pps))


def _params_from_hvcc(rec: bytes) -> VideoParams:
    pos = 22
    arrays = rec[pos]
    pos += 1
    found: dict[int, list[bytes]] = {32: [], 33: [], 34: []}
    for _ in range(arrays):
        nal_type = rec[pos] & 0x3F
        count = struct.unpack_from(">H", rec, pos + 1)[0]
        pos += 3
        for _ in range(count):
            size = struct.unpack_from(">H", rec, pos)[0]
            found.setdefault(nal_type, []).append(rec[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return VideoParams(
        codec="h265", vps=tuple(found[32]), sps=tuple(found[33]), pps=tuple(found[34])
    )


def _asc_from_esds(data: bytes) -> bytes:
    """Find the DecoderSpecificInfo (tag 5) payload in an ES descriptor."""
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        size = 0
        for _ in range(4):
            b = data[pos]
            pos += 1
            size = (size << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        if tag == 3:
            flags = data[pos + 2]
            pos += 3
            if flags & 0x80:
                pos += 2
            if flags & 0x40:
                pos += 1 + data[pos]
            if flags & 0x20:
                pos += 2
            continue
        if tag == 4:
            pos += 13
            continue
        if tag == 5:
            return data[pos : pos + size]
        pos += size
    return b""


def _parse_moof(
    moof: memoryview, video_id: int, trex: dict[int, tuple[int, int, int]]
) -> tuple[int, int, int, bool, int]:
    """(sequence, base_decode_time, duration, first_is_key, samples) of the video traf."""
    boxes = _children(moof)
    sequence = struct.unpack_from(">I", _one(boxes, b"mfhd"), 4)[0]
    for traf in boxes.get(b"traf", []):
        tb = _children(traf)
        tfhd = _one(tb, b"tfhd")
        flags = struct.unpack_from(">I", tfhd, 0)[0] & 0xFFFFFF
        track_id = struct.unpack_from(">I", tfhd, 4)[0]
        if track_id != video_id:
            continue
        d_dur, _d_size, d_flags = trex.get(track_id, (0, 0, 0))
        pos = 8
        if flags & 0x01:
            pos += 8
        if flags & 0x02:
            pos += 4
        if flags & 0x08:
            d_dur = struct.unpack_from(">I", tfhd, pos)[0]
            pos += 4
        if flags & 0x10:
            pos += 4
        if flags & 0x20:
            d_flags = struct.unpack_from(">I", tfhd, pos)[0]
        base = 0
        if b"tfdt" in tb:
            tfdt = tb[b"tfdt"][0]
            base = struct.unpack_from(">Q" if tfdt[0] == 1 else ">I", tfdt, 4)[0]
        duration = 0
        count = 0
        first_flags: int | None = None
        for trun in tb.get(b"trun", []):
            tflags = struct.unpack_from(">I", trun, 0)[0] & 0xFFFFFF
            n = struct.unpack_from(">I", trun, 4)[0]
            pos = 8
            if tflags & 0x01:
                pos += 4
            fsf: int | None = None
            if tflags & 0x04:
                fsf = struct.unpack_from(">I", trun, pos)[0]
                pos += 4
            fields = bin(tflags & 0xF00).count("1")
            for i in range(n):
                dur = d_dur
                sflags = d_flags
                p = pos
                if tflags & 0x100:
                    dur = struct.unpack_from(">I", trun, p)[0]
                    p += 4
                if tflags & 0x200:
                    p += 4
                if tflags & 0x400:
                    sflags = struct.unpack_from(">I", trun, p)[0]
                if i == 0 and fsf is not None:
                    sflags = fsf
                if first_flags is None:
                    first_flags = sflags
                duration += dur
                pos += 4 * fields
            count += n
        key = first_flags is not None and not first_flags & 0x00010000
        return sequence, base, duration, key, count
    return sequence, 0, 0, False, 0


def scan(path: str | os.PathLike[str] | BinaryIO) -> ScanResult:
    """Index a fragmented MP4 file, tolerating a truncated tail.

    Raises :class:`Mp4Error` when the init segment (``ftyp`` + ``moov``) is incomplete.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as f:
            return _scan(f)
    return _scan(path)


def _scan(f: BinaryIO) -> ScanResult:
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    pos = 0
    moov: bytes | None = None
    result: ScanResult | None = None
    video_id = VIDEO_TRACK_ID
    trex: dict[int, tuple[int, int, int]] = {}
    pending_moof: tuple[int, bytes] | None = None
    while pos + 8 <= file_size:
        f.seek(pos)
        header = f.read(16)
        size, kind = struct.unpack_from(">I4s", header, 0)
        hsize = 8
        if size == 1:
            if len(header) < 16:
                break
            size = struct.unpack_from(">Q", header, 8)[0]
            hsize = 16
        elif size == 0:
            size = file_size - pos
        if size < hsize or pos + size > file_size:
            break  # torn box
        if kind == b"moov":
            f.seek(pos + hsize)
            moov = f.read(size - hsize)
            boxes = _children(moov)
            tracks = [_parse_trak(t)[0] for t in boxes.get(b"trak", [])]
            start_utc = None
            if b"udta" in boxes:
                vutc = _children(boxes[b"udta"][0]).get(b"vutc")
                if vutc:
                    start_utc = struct.unpack_from(">Q", vutc[0])[0] / 1000.0
            if b"mvex" in boxes:
                for t in _children(boxes[b"mvex"][0]).get(b"trex", []):
                    tid, _idx, d_dur, d_size, d_flags = struct.unpack_from(">5I", t, 4)
                    trex[tid] = (d_dur, d_size, d_flags)
            result = ScanResult(
                file_size=file_size, init_size=pos + size, tracks=tracks, start_utc=start_utc
            )
            result.complete_size = pos + size
            video = result.video
            if video is not None:
                video_id = video.track_id
                result.timescale = video.timescale
        elif kind == b"moof" and result is not None:
            f.seek(pos + hsize)
            pending_moof = (pos, f.read(size - hsize))
        elif kind == b"mdat" and result is not None and pending_moof is not None:
            moof_pos, moof = pending_moof
            pending_moof = None
            try:
                seq, base, dur, key, count = _parse_moof(memoryview(moof), video_id, trex)
            except (Mp4Error, struct.error, IndexError):
                break
            result.fragments.append(
                FragmentInfo(moof_pos, pos + size - moof_pos, seq, base, dur, key, count)
            )
            result.complete_size = pos + size
        pos += size
    if result is None:
        raise Mp4Error("no complete init segment (ftyp+moov)")
    return result


# ---------------------------------------------------------------------------- live
class LiveMuxer:
    """Init segment plus one fragment per frame, for low-latency live view (MSE).

    ``push`` returns the bytes to append to a SourceBuffer: a fragment, preceded by a
    new init segment when the stream's parameters change at a keyframe. Frames before
    the first keyframe return ``None``. A frame's duration is not known until the next
    one arrives, so each fragment uses the previous frame interval as its duration;
    decode times come from the stream and stay exact. The very first frame uses the SPS
    frame rate when the camera signals one, else 200 ms: a too-long guess is harmless,
    while a too-short one would make Chromium see a discontinuity and drop the rest of
    the first GOP.
    """

    def __init__(self, params: VideoParams | None = None, audio: AacConfig | None = None) -> None:
        self.params = params
        self.audio = audio
        self._sequence = 0
        self._base: int | None = None
        self._last_ticks: int | None = None
        self._last_duration = 18000
        self._audio_base = 0

    @property
    def init(self) -> bytes:
        """The current init segment (raises if no parameters are known yet)."""
        if self.params is None:
            raise Mp4Error("no video parameters yet")
        return init_segment(self.params, self.audio)

    def push(self, frame: Frame) -> bytes | None:
        """Bytes for ``frame`` (see class docstring)."""
        if frame.track != 0:
            if self._base is None or self.audio is None:
                return None
            ticks = frame.ticks - self._audio_base
            if ticks < 0:
                return None
            self._sequence += 1
            sample = Sample(frame.data, self.audio.frame_length, True)
            return fragment(self._sequence, [TrackRun(AUDIO_TRACK_ID, ticks, [sample])])
        prefix = b""
        if self._base is None or (frame.params is not None and frame.params != self.params):
            if not frame.keyframe or frame.params is None or not frame.params.complete:
                return None
            first = self._base is None
            self.params = frame.params
            prefix = self.init
            rate = frame.params.frame_rate
            if first and rate and 1.0 <= rate <= 120.0:
                self._last_duration = round(VIDEO_TIMESCALE / rate)
            if first:
                self._base = frame.ticks
                if self.audio is not None:
                    self._audio_base = frame.ticks * self.audio.sample_rate // VIDEO_TIMESCALE
        assert self._base is not None
        if self._last_ticks is not None and frame.ticks > self._last_ticks:
            self._last_duration = frame.ticks - self._last_ticks
        self._last_ticks = frame.ticks
        self._sequence += 1
        sample = Sample(frame.data, self._last_duration, frame.keyframe)
        run = TrackRun(VIDEO_TRACK_ID, frame.ticks - self._base, [sample])
        return prefix + fragment(self._sequence, [run])


def read_init(path: str | Path) -> bytes:
    """The init segment bytes of a scanned file (for MSE / HLS ``EXT-X-MAP``)."""
    info = scan(path)
    with open(path, "rb") as f:
        return f.read(info.init_size)
