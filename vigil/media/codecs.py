"""Codec parameter parsing: H.264/H.265 SPS, decoder configuration records, AAC config.

Everything here is pure and synchronous. It turns the parameter sets a camera sends
(in the SDP ``sprop-*`` attributes or in-band) into what an MP4 sample entry and a
browser's Media Source Extensions need: picture size, profile/level, the ``avcC`` /
``hvcC`` records and RFC 6381 codec strings such as ``avc1.64001f`` or
``hvc1.1.6.L120.90``.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from functools import cached_property

__all__ = [
    "AacConfig",
    "BitReader",
    "CodecError",
    "H264Sps",
    "H265Sps",
    "VideoParams",
    "parse_aac_config",
    "parse_h264_sps",
    "parse_h265_sps",
    "split_annexb",
    "unescape_rbsp",
]

H264_PROFILES_WITH_CHROMA = frozenset(
    {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
)

AAC_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


class CodecError(ValueError):
    """Raised when a parameter set or codec configuration cannot be parsed."""


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (``00 00 03`` -> ``00 00``) from a NAL unit."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    i = 0
    n = len(nal)
    while i < n:
        j = nal.find(b"\x00\x00\x03", i)
        if j < 0:
            out += nal[i:]
            break
        out += nal[i : j + 2]
        i = j + 3
    return bytes(out)


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units (start codes removed)."""
    nals: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    if i < 0:
        return [data] if data else []
    start = i + 3
    while True:
        j = data.find(b"\x00\x00\x01", start)
        if j < 0:
            nal = data[start:]
            if nal:
                nals.append(nal.rstrip(b"\x00") if nal.endswith(b"\x00") else nal)
            return nals
        end = j
        # A four-byte start code leaves a trailing zero on the previous NAL.
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            nals.append(data[start:end])
        start = j + 3


class BitReader:
    """MSB-first bit reader with Exp-Golomb decoding over an RBSP."""

    __slots__ = ("_data", "_nbits", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._nbits = len(data) * 8

    @property
    def position(self) -> int:
        """Current position in bits."""
        return self._pos

    def u(self, n: int) -> int:
        """Read ``n`` bits as an unsigned integer."""
        if n == 0:
            return 0
        if self._pos + n > self._nbits:
            raise CodecError("bitstream ended early")
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def flag(self) -> bool:
        """Read one bit as a boolean."""
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        """Skip ``n`` bits."""
        if self._pos + n > self._nbits:
            raise CodecError("bitstream ended early")
        self._pos += n

    def ue(self) -> int:
        """Read an unsigned Exp-Golomb code."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CodecError("invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Read a signed Exp-Golomb code."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True, slots=True)
class H264Sps:
    """The fields of an H.264 sequence parameter set that a recorder needs."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_rate: float | None

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``avc1.64001f``."""
        return f"avc1.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_h264_sps(nal: bytes) -> H264Sps:
    """Parse an H.264 SPS NAL unit (with its one-byte NAL header)."""
    if not nal or nal[0] & 0x1F != 7:
        raise CodecError("not an H.264 SPS NAL unit")
    try:
        return _parse_h264_sps(BitReader(unescape_rbsp(nal[1:])))
    except IndexError as exc:  # pragma: no cover - BitReader checks bounds
        raise CodecError("truncated H.264 SPS") from exc


def _parse_h264_sps(r: BitReader) -> H264Sps:
    profile_idc = r.u(8)
    constraint = r.u(8)
    level_idc = r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in H264_PROFILES_WITH_CHROMA:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.skip(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    crop_l = crop_r = crop_t = crop_b = 0
    if r.flag():
        crop_l, crop_r, crop_t, crop_b = r.ue(), r.ue(), r.ue(), r.ue()
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    sub_w = 1 if chroma_format_idc == 3 else 2
    sub_h = 2 if chroma_format_idc == 1 else 1
    crop_unit_x = 1 if chroma_array_type == 0 else sub_w
    crop_unit_y = (2 - frame_mbs_only) * (1 if chroma_array_type == 0 else sub_h)
    width = width_mbs * 16 - crop_unit_x * (crop_l + crop_r)
    height = (2 - frame_mbs_only) * height_map_units * 16 - crop_unit_y * (crop_t + crop_b)
    frame_rate: float | None = None
    try:
        if r.flag():  # vui_parameters_present_flag
            frame_rate = _h264_vui_frame_rate(r)
    except CodecError:
        frame_rate = None
    return H264Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        width=width,
        height=height,
        frame_rate=frame_rate,
    )


def _h264_vui_frame_rate(r: BitReader) -> float | None:
    if r.flag() and r.u(8) == 255:  # aspect_ratio_info_present_flag, Extended_SAR
        r.skip(32)
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)
        if r.flag():
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    if r.flag():  # timing_info_present_flag
        num_units_in_tick = r.u(32)
        time_scale = r.u(32)
        if num_units_in_tick:
            return time_scale / (2 * num_units_in_tick)
    return None


@dataclass(frozen=True, slots=True)
class H265Sps:
    """The fields of an H.265 sequence parameter set that a recorder needs."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    compatibility_flags: int
    constraint_flags: bytes  # six bytes (48 bits)
    level_idc: int
    max_sub_layers: int
    temporal_id_nesting: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int

    @property
    def codec_string(self) -> str:
        """RFC 6381 / ISO 14496-15 Annex E codec string, e.g. ``hvc1.1.6.L120.90``."""
        space = ("", "A", "B", "C")[self.profile_space]
        reversed_flags = int(f"{self.compatibility_flags:032b}"[::-1], 2)
        tier = "H" if self.tier_flag else "L"
        constraint = self.constraint_flags.rstrip(b"\x00")
        parts = [
            "hvc1",
            f"{space}{self.profile_idc}",
            f"{reversed_flags:x}",
            f"{tier}{self.level_idc}",
        ]
        parts.extend(f"{b:x}" for b in constraint)
        return ".".join(parts)


def parse_h265_sps(nal: bytes) -> H265Sps:
    """Parse an H.265 SPS NAL unit (with its two-byte NAL header)."""
    if len(nal) < 3 or (nal[0] >> 1) & 0x3F != 33:
        raise CodecError("not an H.265 SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    temporal_id_nesting = r.u(1)
    profile_space = r.u(2)
    tier = r.u(1)
    profile_idc = r.u(5)
    compat = r.u(32)
    constraint = r.u(48).to_bytes(6, "big")
    level_idc = r.u(8)
    sub_profile: list[bool] = []
    sub_level: list[bool] = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.flag())
        sub_level.append(r.flag())
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.skip(88)
        if sub_level[i]:
            r.skip(8)
    r.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = r.ue()
    if chroma_format_idc == 3:
        r.skip(1)
    width = r.ue()
    height = r.ue()
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w = 2 if chroma_format_idc in (1, 2) else 1
        sub_h = 2 if chroma_format_idc == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    return H265Sps(
        profile_space=profile_space,
        tier_flag=tier,
        profile_idc=profile_idc,
        compatibility_flags=compat,
        constraint_flags=constraint,
        level_idc=level_idc,
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=temporal_id_nesting,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        width=width,
        height=height,
    )


@dataclass(frozen=True)
class VideoParams:
    """One set of video parameter sets (codec ``h264`` or ``h265``).

    Two frames whose ``params`` compare unequal need different MP4 init segments.
    ``vps`` is empty for H.264.
    """

    codec: str
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    vps: tuple[bytes, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every parameter set needed to decode the stream is known."""
        if self.codec == "h265":
            return bool(self.vps and self.sps and self.pps)
        return bool(self.sps and self.pps)

    @cached_property
    def parsed_sps(self) -> H264Sps | H265Sps:
        """The parsed first SPS."""
        if not self.sps:
            raise CodecError("no SPS known for this stream")
        if self.codec == "h265":
            return parse_h265_sps(self.sps[0])
        return parse_h264_sps(self.sps[0])

    @property
    def width(self) -> int:
        """Displayed picture width in pixels (after cropping)."""
        return self.parsed_sps.width

    @property
    def height(self) -> int:
        """Displayed picture height in pixels (after cropping)."""
        return self.parsed_sps.height

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string for Media Source Extensions."""
        return self.parsed_sps.codec_string

    @property
    def frame_rate(self) -> float | None:
        """Frame rate from the SPS VUI timing info (H.264 only), if the camera sends it."""
        sps = self.parsed_sps
        return sps.frame_rate if isinstance(sps, H264Sps) else None

    @property
    def sample_entry(self) -> bytes:
        """MP4 sample entry four-character code (``avc1`` or ``hvc1``)."""
        return b"hvc1" if self.codec == "h265" else b"avc1"

    @cached_property
    def config_record(self) -> bytes:
        """The ``avcC`` or ``hvcC`` decoder configuration record (box payload)."""
        if self.codec == "h265":
            return self._hvcc()
        return self._avcc()

    def _avcc(self) -> bytes:
        sps = self.parsed_sps
        assert isinstance(sps, H264Sps)
        first = self.sps[0]
        out = bytearray([1, first[1], first[2], first[3], 0xFF, 0xE0 | len(self.sps)])
        for s in self.sps:
            out += struct.pack(">H", len(s)) + s
        out.append(len(self.pps))
        for p in self.pps:
            out += struct.pack(">H", len(p)) + p
        if sps.profile_idc in (100, 110, 122, 144):
            out.append(0xFC | (sps.chroma_format_idc & 3))
            out.append(0xF8 | ((sps.bit_depth_luma - 8) & 7))
            out.append(0xF8 | ((sps.bit_depth_chroma - 8) & 7))
            out.append(0)
        return bytes(out)

    def _hvcc(self) -> bytes:
        sps = self.parsed_sps
        assert isinstance(sps, H265Sps)
        out = bytearray()
        out.append(1)
        out.append((sps.profile_space << 6) | (sps.tier_flag << 5) | sps.profile_idc)
        out += struct.pack(">I", sps.compatibility_flags)
        out += sps.constraint_flags
        out.append(sps.level_idc)
        out += struct.pack(">H", 0xF000)  # min_spatial_segmentation_idc = 0
        out.append(0xFC)  # parallelismType = 0 (unknown)
        out.append(0xFC | (sps.chroma_format_idc & 3))
        out.append(0xF8 | ((sps.bit_depth_luma - 8) & 7))
        out.append(0xF8 | ((sps.bit_depth_chroma - 8) & 7))
        out += struct.pack(">H", 0)  # avgFrameRate unknown
        out.append((sps.max_sub_layers << 3) | (sps.temporal_id_nesting << 2) | 3)
        arrays = [(32, self.vps), (33, self.sps), (34, self.pps)]
        out.append(len(arrays))
        for nal_type, nals in arrays:
            out.append(0x80 | nal_type)
            out += struct.pack(">H", len(nals))
            for nal in nals:
                out += struct.pack(">H", len(nal)) + nal
        return bytes(out)

    @classmethod
    def from_sprop(cls, codec: str, fmtp: dict[str, str]) -> VideoParams:
        """Build from SDP ``fmtp`` attributes (RFC 6184 / RFC 7798)."""

        def decode(value: str | None) -> tuple[bytes, ...]:
            if not value:
                return ()
            out = []
            for raw in value.split(","):
                item = raw.strip()
                if not item:
                    continue
                try:
                    out.append(base64.b64decode(item + "=" * (-len(item) % 4), validate=True))
                except (binascii.Error, ValueError) as exc:
                    raise CodecError(f"bad base64 in sprop attribute: {exc}") from exc
            return tuple(out)

        if codec == "h265":
            return cls(
                codec="h265",
                vps=decode(fmtp.get("sprop-vps")),
                sps=decode(fmtp.get("sprop-sps")),
                pps=decode(fmtp.get("sprop-pps")),
            )
        sets = decode(fmtp.get("sprop-parameter-sets"))
        sps = tuple(s for s in sets if s and s[0] & 0x1F == 7)
        pps = tuple(s for s in sets if s and s[0] & 0x1F == 8)
        return cls(codec="h264", sps=sps, pps=pps)


@dataclass(frozen=True, slots=True)
class AacConfig:
    """An MPEG-4 AudioSpecificConfig (AAC) and the values derived from it."""

    config: bytes
    object_type: int
    sample_rate: int
    channels: int

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``mp4a.40.2``."""
        return f"mp4a.40.{self.object_type}"

    @property
    def frame_length(self) -> int:
        """Samples per AAC access unit."""
        return 1024


def parse_aac_config(config: bytes) -> AacConfig:
    """Parse an AudioSpecificConfig (e.g. from the SDP ``config=`` fmtp hex)."""
    r = BitReader(config)
    try:
        aot = r.u(5)
        if aot == 31:
            aot = 32 + r.u(6)
        idx = r.u(4)
        rate = r.u(24) if idx == 15 else AAC_SAMPLE_RATES[idx] if idx < len(AAC_SAMPLE_RATES) else 0
        channels = r.u(4)
    except (CodecError, IndexError) as exc:
        raise CodecError("truncated AudioSpecificConfig") from exc
    if rate == 0:
        raise CodecError("invalid AAC sampling frequency index")
    return AacConfig(config=bytes(config), object_type=aot, sample_rate=rate, channels=channels)
