"""SPS parsing, decoder configuration records, codec strings, AAC config."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.media.codecs import (
    BitReader,
    CodecError,
    VideoParams,
    parse_aac_config,
    parse_h264_sps,
    parse_h265_sps,
    split_annexb,
    unescape_rbsp,
)
from vigil.media.fmp4 import _params_from_hvcc, params_from_avcc
from vigil.media.simulator.fixtures import Fixture
from vigil.media.tests.conftest import first_nal


class BitWriter:
    """Test-side Exp-Golomb encoder."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        v = value + 1
        n = v.bit_length()
        self.bits += [0] * (n - 1)
        self.u(n, v)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def data(self) -> bytes:
        bits = self.bits + [1] + [0] * (-(len(self.bits) + 1) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.integers(-(2**20), 2**20)), min_size=1, max_size=30))
def test_exp_golomb_round_trip(values: list[tuple[bool, int]]) -> None:
    w = BitWriter()
    for signed, v in values:
        if signed:
            w.se(v)
        else:
            w.ue(abs(v))
    r = BitReader(w.data())
    for signed, v in values:
        assert (r.se() if signed else r.ue()) == (v if signed else abs(v))


def test_bit_reader_bounds() -> None:
    r = BitReader(b"\x00")
    with pytest.raises(CodecError):
        r.ue()
    with pytest.raises(CodecError):
        BitReader(b"").u(1)


def test_unescape_rbsp() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"
    assert unescape_rbsp(b"abc") == b"abc"


def test_split_annexb_three_and_four_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x01\x65\xcc"
    assert split_annexb(data) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc"]


def _synthetic_h264_sps(
    width_mbs: int, height_mbs: int, crop_bottom: int, profile: int = 100
) -> bytes:
    w = BitWriter()
    w.u(8, profile)
    w.u(8, 0)
    w.u(8, 40)
    w.ue(0)  # sps id
    if profile == 100:
        w.ue(1)  # chroma 4:2:0
        w.ue(0)
        w.ue(0)
        w.u(1, 0)
        w.u(1, 0)  # no scaling matrix
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(2)  # poc type 2
    w.ue(1)  # max refs
    w.u(1, 0)
    w.ue(width_mbs - 1)
    w.ue(height_mbs - 1)
    w.u(1, 1)  # frame_mbs_only
    w.u(1, 1)  # direct_8x8
    w.u(1, 1 if crop_bottom else 0)
    if crop_bottom:
        w.ue(0)
        w.ue(0)
        w.ue(0)
        w.ue(crop_bottom)
    w.u(1, 0)  # no VUI
    return b"\x67" + w.data()


@pytest.mark.parametrize(
    ("wmb", "hmb", "crop", "expected"),
    [(120, 68, 4, (1920, 1080)), (40, 23, 6, (640, 356)), (80, 45, 0, (1280, 720))],
)
def test_h264_sps_cropping(wmb: int, hmb: int, crop: int, expected: tuple[int, int]) -> None:
    sps = parse_h264_sps(_synthetic_h264_sps(wmb, hmb, crop))
    assert (sps.width, sps.height) == expected
    assert sps.codec_string == "avc1.640028"


def test_h264_sps_baseline_profile() -> None:
    sps = parse_h264_sps(_synthetic_h264_sps(40, 30, 0, profile=66))
    assert (sps.width, sps.height, sps.chroma_format_idc) == (640, 480, 1)
    assert sps.codec_string.startswith("avc1.42")


def test_rejects_wrong_nal() -> None:
    with pytest.raises(CodecError):
        parse_h264_sps(b"\x68\x00")
    with pytest.raises(CodecError):
        parse_h265_sps(b"\x44\x01\x00")


@pytest.mark.footage
def test_real_h264_sps(main_h264: Fixture, sub_h264: Fixture) -> None:
    sps = parse_h264_sps(first_nal(main_h264, 7))
    assert (sps.width, sps.height) == (1920, 1080)  # coded 1088, cropped
    assert sps.profile_idc == 100
    assert sps.frame_rate == pytest.approx(10.0)
    assert sps.codec_string == "avc1.640028"
    sub = parse_h264_sps(first_nal(sub_h264, 7))
    assert (sub.width, sub.height, sub.profile_idc) == (640, 360, 77)


@pytest.mark.footage
def test_real_h265_sps_and_hvcc(main_h265: Fixture) -> None:
    vps, sps_nal, pps = first_nal(main_h265, 32), first_nal(main_h265, 33), first_nal(main_h265, 34)
    sps = parse_h265_sps(sps_nal)
    assert (sps.width, sps.height) == (1920, 1080)
    assert sps.profile_idc == 1
    assert sps.codec_string == "hvc1.1.6.L120.90"
    params = VideoParams(codec="h265", vps=(vps,), sps=(sps_nal,), pps=(pps,))
    back = _params_from_hvcc(params.config_record)
    assert back == params
    assert params.config_record[0] == 1
    assert params.config_record[21] & 3 == 3


@pytest.mark.footage
def test_avcc_round_trip_and_sprop(main_h264: Fixture) -> None:
    sps, pps = first_nal(main_h264, 7), first_nal(main_h264, 8)
    params = VideoParams(codec="h264", sps=(sps,), pps=(pps,))
    rec = params.config_record
    assert rec[:4] == bytes((1, sps[1], sps[2], sps[3]))
    assert rec[4] == 0xFF
    assert params_from_avcc(rec) == params
    sprop = ",".join(base64.b64encode(x).decode() for x in (sps, pps))
    assert VideoParams.from_sprop("h264", {"sprop-parameter-sets": sprop}) == params


def test_sprop_bad_base64() -> None:
    with pytest.raises(CodecError):
        VideoParams.from_sprop("h264", {"sprop-parameter-sets": "!!!"})


@pytest.mark.parametrize(
    ("hexconfig", "rate", "channels", "codec"),
    [
        ("1188", 48000, 1, "mp4a.40.2"),
        ("1210", 44100, 2, "mp4a.40.2"),
        ("1408", 16000, 1, "mp4a.40.2"),
    ],
)
def test_aac_config(hexconfig: str, rate: int, channels: int, codec: str) -> None:
    cfg = parse_aac_config(bytes.fromhex(hexconfig))
    assert (cfg.sample_rate, cfg.channels, cfg.codec_string) == (rate, channels, codec)


def test_aac_config_invalid() -> None:
    with pytest.raises(CodecError):
        parse_aac_config(b"")
