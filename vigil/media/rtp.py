"""RTP depacketizers: H.264 (RFC 6184), H.265 (RFC 7798), AAC (RFC 3640 AAC-hbr).

Each depacketizer takes whole RTP packets (``bytes`` or a ``memoryview`` over an
immutable ``bytes`` object: payload slices are kept without copying until the access
unit is joined) and calls ``on_frame`` with one :class:`Frame` per access unit.

* Video access units end at the RTP marker bit or when the timestamp changes. They are
  emitted as MP4 samples: every NAL unit prefixed by its 4-byte big-endian length
  (AVCC/HVCC). Parameter sets (SPS/PPS/VPS) and access unit delimiters are taken out of
  the sample and tracked in :class:`~vigil.media.codecs.VideoParams`; a change yields a
  new ``params`` object so the segment writer can start a new file with a new init.
* 32-bit RTP timestamps are extended to monotonic 64-bit ticks counted from the stream
  start (the ``RTP-Info`` ``rtptime`` of PLAY, or the first packet).
* A sequence-number gap (packet loss) discards the damaged access unit and, for video,
  every following one until the next keyframe (IDR for H.264, IRAP for H.265).
* Decode order is assumed equal to presentation order (cameras send no B-frames); a
  stream whose timestamps go backwards is still accepted and counted in
  ``reordered``, and the MP4 writer then clamps the affected durations.

The hot path is per packet: no logging, no per-packet objects beyond payload slices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from vigil.media.codecs import AacConfig, BitReader, CodecError, VideoParams, parse_aac_config

__all__ = [
    "AacDepacketizer",
    "Depacketizer",
    "Frame",
    "H264Depacketizer",
    "H265Depacketizer",
    "TimestampExtender",
    "VideoDepacketizer",
    "make_depacketizer",
]

_LEN4: Final = [n.to_bytes(4, "big") for n in range(1500)]


def _len4(n: int) -> bytes:
    return _LEN4[n] if n < 1500 else n.to_bytes(4, "big")


class Frame:
    """One access unit: a video picture (AVCC/HVCC sample) or one AAC frame."""

    __slots__ = ("data", "keyframe", "params", "ticks", "track")

    def __init__(
        self,
        track: int,
        ticks: int,
        data: bytes,
        keyframe: bool,
        params: VideoParams | None = None,
    ) -> None:
        self.track = track
        self.ticks = ticks
        self.data = data
        self.keyframe = keyframe
        self.params = params

    def __repr__(self) -> str:
        kind = "key" if self.keyframe else "delta"
        return f"Frame(track={self.track}, ticks={self.ticks}, {kind}, {len(self.data)} B)"


class TimestampExtender:
    """Extends 32-bit RTP timestamps into signed 64-bit ticks relative to a base."""

    __slots__ = ("_base", "_ext", "_last")

    def __init__(self) -> None:
        self._base: int | None = None
        self._last = 0
        self._ext = 0

    @property
    def has_base(self) -> bool:
        """True once a base timestamp was set or seen."""
        return self._base is not None

    @property
    def base(self) -> int | None:
        """The 32-bit RTP timestamp that is tick 0 (None before the first packet)."""
        return self._base

    def set_base(self, ts32: int) -> None:
        """Declare which RTP timestamp is tick 0 (e.g. ``RTP-Info: rtptime``)."""
        self._base = ts32 & 0xFFFFFFFF
        self._last = self._base
        self._ext = 0

    def extend(self, ts32: int) -> int:
        """Ticks since the base for ``ts32``; a step back up to 2**31 is negative."""
        if self._base is None:
            self.set_base(ts32)
            return 0
        delta = (ts32 - self._last) & 0xFFFFFFFF
        if delta & 0x80000000:
            delta -= 0x100000000
        self._ext += delta
        self._last = ts32
        return self._ext


def _noop(_frame: Frame) -> None:
    return None


class Depacketizer:
    """RTP header parsing, sequence tracking and timestamp extension shared by all codecs."""

    clock_rate: int = 90000

    def __init__(self, track: int = 0, on_frame: Callable[[Frame], None] | None = None) -> None:
        self.track = track
        self.on_frame: Callable[[Frame], None] = on_frame or _noop
        self.extender = TimestampExtender()
        self._seq = -1
        self.packets = 0
        self.lost = 0
        self.malformed = 0
        self.frames = 0
        self.dropped = 0

    def push(self, pkt: bytes | memoryview) -> None:
        """Feed one RTP packet."""
        n = len(pkt)
        if n < 12:
            self.malformed += 1
            return
        b0 = pkt[0]
        if b0 & 0xC0 != 0x80:
            self.malformed += 1
            return
        off = 12 + (b0 & 0x0F) * 4
        if b0 & 0x10:
            if n < off + 4:
                self.malformed += 1
                return
            off += 4 + ((pkt[off + 2] << 8) | pkt[off + 3]) * 4
        end = n - pkt[n - 1] if b0 & 0x20 else n
        if off >= end:
            self.malformed += 1
            return
        seq = (pkt[2] << 8) | pkt[3]
        last = self._seq
        if last >= 0 and seq != ((last + 1) & 0xFFFF):
            diff = (seq - last) & 0xFFFF
            if diff == 0 or diff & 0x8000:
                return  # duplicate or late packet: TCP never reorders, so just ignore it
            self.lost += diff - 1
            self._on_loss()
        self._seq = seq
        self.packets += 1
        ts = (pkt[4] << 24) | (pkt[5] << 16) | (pkt[6] << 8) | pkt[7]
        if type(pkt) is not memoryview:
            pkt = memoryview(pkt)
        self._payload(pkt[off:end], ts, bool(pkt[1] & 0x80))

    def _payload(self, payload: memoryview, ts: int, marker: bool) -> None:
        raise NotImplementedError

    def _on_loss(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Emit whatever complete access unit is pending (end of stream)."""


class VideoDepacketizer(Depacketizer):
    """Common access-unit assembly for H.264 and H.265."""

    codec = "h264"

    def __init__(
        self,
        params: VideoParams | None = None,
        track: int = 0,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        super().__init__(track, on_frame)
        self._vps: dict[int, bytes] = {}
        self._sps: dict[int, bytes] = {}
        self._pps: dict[int, bytes] = {}
        self.params = VideoParams(codec=self.codec, sps=(), pps=())
        if params is not None:
            for nal in (*params.vps, *params.sps, *params.pps):
                self._parameter_set(nal)
        self._parts: list[bytes | memoryview] = []
        self._ts = -1
        self._key = False
        self._broken = False
        self._fu: list[bytes | memoryview] | None = None
        self._need_key = True
        self.reordered = 0
        self._last_ticks: int | None = None

    # --- parameter sets -------------------------------------------------------------
    def _parameter_set(self, nal: bytes | memoryview) -> None:
        kind, pid = self._param_key(nal)
        table = self._vps if kind == 0 else self._sps if kind == 1 else self._pps
        data = bytes(nal)
        if table.get(pid) == data:
            return
        table[pid] = data
        self.params = VideoParams(
            codec=self.codec,
            vps=tuple(self._vps[k] for k in sorted(self._vps)),
            sps=tuple(self._sps[k] for k in sorted(self._sps)),
            pps=tuple(self._pps[k] for k in sorted(self._pps)),
        )

    def _param_key(self, nal: bytes | memoryview) -> tuple[int, int]:
        raise NotImplementedError

    # --- access units ---------------------------------------------------------------
    def _on_loss(self) -> None:
        self._broken = True
        self._fu = None
        self._need_key = True

    def _add_nal(self, nal: bytes | memoryview) -> None:
        raise NotImplementedError

    def _append(self, nal: bytes | memoryview) -> None:
        self._parts.append(_len4(len(nal)))
        self._parts.append(nal)

    def flush(self) -> None:
        """Finish the current access unit and emit it if it is usable."""
        parts = self._parts
        if parts:
            self._parts = []
            if self._broken or (self._need_key and not (self._key and self.params.complete)):
                self.dropped += 1
            else:
                self._need_key = False
                ticks = self.extender.extend(self._ts)
                last = self._last_ticks
                if last is not None and ticks <= last:
                    self.reordered += 1
                self._last_ticks = ticks
                self.frames += 1
                self.on_frame(Frame(self.track, ticks, b"".join(parts), self._key, self.params))
        self._key = False
        self._broken = False
        self._fu = None


class H264Depacketizer(VideoDepacketizer):
    """RFC 6184 non-interleaved mode: single NAL unit, STAP-A and FU-A packets."""

    codec = "h264"

    def _param_key(self, nal: bytes | memoryview) -> tuple[int, int]:
        t = nal[0] & 0x1F
        try:
            if t == 7:
                r = BitReader(bytes(nal[4:12]))
                return 1, r.ue()
            return 2, BitReader(bytes(nal[1:9])).ue()
        except CodecError:
            return (1 if t == 7 else 2), 0

    def _add_nal(self, nal: bytes | memoryview) -> None:
        t = nal[0] & 0x1F
        if t == 5:
            self._key = True
        elif t in {7, 8}:
            self._parameter_set(nal)
            return
        elif t in {9, 0}:
            return
        self._parts.append(_len4(len(nal)))
        self._parts.append(nal)

    def _payload(self, payload: memoryview, ts: int, marker: bool) -> None:
        if ts != self._ts:
            if self._parts or self._broken:
                self.flush()
            self._ts = ts
        t = payload[0] & 0x1F
        if t == 28:  # FU-A
            if len(payload) < 3:
                self._broken = True
                return
            fu = payload[1]
            if fu & 0x80:
                self._fu = [bytes(((payload[0] & 0xE0) | (fu & 0x1F),)), payload[2:]]
            elif self._fu is None:
                self._broken = True
            else:
                self._fu.append(payload[2:])
            if fu & 0x40 and self._fu is not None:
                self._add_nal(b"".join(self._fu))
                self._fu = None
        elif t == 24:  # STAP-A
            i = 1
            n = len(payload)
            while i + 2 <= n:
                size = (payload[i] << 8) | payload[i + 1]
                i += 2
                if size == 0 or i + size > n:
                    self._broken = True
                    break
                self._add_nal(payload[i : i + size])
                i += size
        elif 1 <= t <= 23:
            self._add_nal(payload)
        else:  # STAP-B, MTAP, FU-B: interleaved mode, not used by cameras
            self.malformed += 1
        if marker:
            self.flush()


class H265Depacketizer(VideoDepacketizer):
    """RFC 7798 without DONL (sprop-max-don-diff=0): single NAL, AP and FU packets."""

    codec = "h265"

    def _param_key(self, nal: bytes | memoryview) -> tuple[int, int]:
        t = (nal[0] >> 1) & 0x3F
        if t == 32:
            return 0, (nal[2] >> 4) if len(nal) > 2 else 0
        if t == 33:
            return 1, (nal[2] >> 4) if len(nal) > 2 else 0  # keyed by its VPS id
        try:
            return 2, BitReader(bytes(nal[2:10])).ue()
        except CodecError:
            return 2, 0

    def _add_nal(self, nal: bytes | memoryview) -> None:
        t = (nal[0] >> 1) & 0x3F
        if 16 <= t <= 23:
            self._key = True
        elif 32 <= t <= 34:
            self._parameter_set(nal)
            return
        elif t == 35:
            return
        self._parts.append(_len4(len(nal)))
        self._parts.append(nal)

    def _payload(self, payload: memoryview, ts: int, marker: bool) -> None:
        if ts != self._ts:
            if self._parts or self._broken:
                self.flush()
            self._ts = ts
        if len(payload) < 3:
            self._broken = True
            return
        t = (payload[0] >> 1) & 0x3F
        if t == 49:  # FU
            fu = payload[2]
            if fu & 0x80:
                header = bytes(((payload[0] & 0x81) | ((fu & 0x3F) << 1), payload[1]))
                self._fu = [header, payload[3:]]
            elif self._fu is None:
                self._broken = True
            else:
                self._fu.append(payload[3:])
            if fu & 0x40 and self._fu is not None:
                self._add_nal(b"".join(self._fu))
                self._fu = None
        elif t == 48:  # AP
            i = 2
            n = len(payload)
            while i + 2 <= n:
                size = (payload[i] << 8) | payload[i + 1]
                i += 2
                if size == 0 or i + size > n:
                    self._broken = True
                    break
                self._add_nal(payload[i : i + size])
                i += size
        elif t < 48:
            self._add_nal(payload)
        else:  # PACI and reserved types
            self.malformed += 1
        if marker:
            self.flush()


class AacDepacketizer(Depacketizer):
    """RFC 3640 mpeg4-generic AAC (AAC-hbr/lbr): AU headers, several AUs or fragments."""

    def __init__(
        self,
        config: AacConfig,
        *,
        size_length: int = 13,
        index_length: int = 3,
        index_delta_length: int = 3,
        track: int = 1,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        super().__init__(track, on_frame)
        self.config = config
        self.clock_rate = config.sample_rate
        self.frame_length = config.frame_length
        self.size_length = size_length
        self.index_length = index_length
        self.index_delta_length = index_delta_length
        self._frag: list[bytes | memoryview] | None = None
        self._frag_size = 0
        self._frag_ts = -1

    def _on_loss(self) -> None:
        self._frag = None

    def _emit(self, ticks: int, data: bytes) -> None:
        self.frames += 1
        self.on_frame(Frame(self.track, ticks, data, True, None))

    def _payload(self, payload: memoryview, ts: int, marker: bool) -> None:
        n = len(payload)
        if n < 2:
            self.malformed += 1
            return
        header_bits = (payload[0] << 8) | payload[1]
        data_off = 2 + (header_bits + 7) // 8
        if data_off > n:
            self.malformed += 1
            return
        sizes: list[int] = []
        if self.size_length == 13 and self.index_length == 3 and self.index_delta_length == 3:
            for i in range(2, 2 + (header_bits // 16) * 2, 2):
                sizes.append(((payload[i] << 8) | payload[i + 1]) >> 3)
        else:
            r = BitReader(bytes(payload[2:data_off]))
            try:
                first = True
                while r.position + self.size_length <= header_bits:
                    sizes.append(r.u(self.size_length))
                    r.skip(self.index_length if first else self.index_delta_length)
                    first = False
            except CodecError:
                self.malformed += 1
                return
        data = payload[data_off:]
        if self._frag is not None:
            if ts == self._frag_ts:
                self._frag.append(data)
                if marker:
                    joined = b"".join(self._frag)
                    self._frag = None
                    if len(joined) == self._frag_size:
                        self._emit(self.extender.extend(ts), joined)
                    else:
                        self.dropped += 1
                return
            self._frag = None
            self.dropped += 1
        if len(sizes) == 1 and sizes[0] > len(data):
            self._frag = [data]
            self._frag_size = sizes[0]
            self._frag_ts = ts
            return
        base = self.extender.extend(ts)
        pos = 0
        for k, size in enumerate(sizes):
            if pos + size > len(data):
                self.malformed += 1
                return
            self._emit(base + k * self.frame_length, bytes(data[pos : pos + size]))
            pos += size


def make_depacketizer(
    encoding: str,
    *,
    track: int,
    fmtp: dict[str, str],
    on_frame: Callable[[Frame], None] | None = None,
) -> Depacketizer:
    """Depacketizer for an SDP ``rtpmap`` encoding name (``H264``, ``H265``, ``MPEG4-GENERIC``)."""
    name = encoding.upper()
    if name == "H264":
        return H264Depacketizer(VideoParams.from_sprop("h264", fmtp), track, on_frame)
    if name in ("H265", "HEVC"):
        return H265Depacketizer(VideoParams.from_sprop("h265", fmtp), track, on_frame)
    if name == "MPEG4-GENERIC":
        mode = fmtp.get("mode", "").lower()
        if mode not in ("aac-hbr", "aac-lbr"):
            raise CodecError(f"unsupported mpeg4-generic mode {mode!r}")
        config = parse_aac_config(bytes.fromhex(fmtp.get("config", "")))
        return AacDepacketizer(
            config,
            size_length=int(fmtp.get("sizelength", "13")),
            index_length=int(fmtp.get("indexlength", "3")),
            index_delta_length=int(fmtp.get("indexdeltalength", "3")),
            track=track,
            on_frame=on_frame,
        )
    raise CodecError(f"unsupported RTP encoding {encoding!r}")
