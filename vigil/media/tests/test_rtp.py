"""RTP depacketizers, fed with packets built from real Annex-B footage."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.media.codecs import parse_aac_config
from vigil.media.rtp import (
    AacDepacketizer,
    Frame,
    H264Depacketizer,
    H265Depacketizer,
    TimestampExtender,
    VideoDepacketizer,
    make_depacketizer,
)
from vigil.media.simulator.fixtures import Fixture
from vigil.media.tests.helpers import Packetizer, access_units, adts_config, adts_frames, is_key

pytestmark = pytest.mark.footage


def _expected_sample(au: list[bytes], codec: str) -> bytes:
    """AVCC/HVCC sample for an access unit, parameter sets and AUDs removed."""
    out = b""
    for nal in au:
        t = (nal[0] >> 1) & 0x3F if codec == "h265" else nal[0] & 0x1F
        if (codec == "h265" and 32 <= t <= 35) or (codec == "h264" and t in (7, 8, 9)):
            continue
        out += struct.pack(">I", len(nal)) + nal
    return out


def _depacketizer(codec: str, frames: list[Frame]) -> VideoDepacketizer:
    return (
        H265Depacketizer(on_frame=frames.append)
        if codec == "h265"
        else H264Depacketizer(on_frame=frames.append)
    )


def _run(
    fx: Fixture, *, mtu: int = 1400, ts0: int = 123456, limit: int = 60
) -> tuple[list[list[bytes]], list[Frame], VideoDepacketizer, int]:
    aus = access_units(fx.video.read_bytes(), fx.codec)[:limit]
    pk = Packetizer(fx.codec, mtu=mtu)
    frames: list[Frame] = []
    dp = _depacketizer(fx.codec, frames)
    packets = 0
    for i, au in enumerate(aus):
        for p in pk.video(au, ts0 + i * 9000):
            dp.push(p)
            packets += 1
    return aus, frames, dp, packets


@pytest.mark.parametrize("name", ["main_h264", "sub_h264", "main_h265"])
def test_depacketizer_reproduces_access_units(name: str, request: pytest.FixtureRequest) -> None:
    fx: Fixture = request.getfixturevalue(name)
    aus, frames, dp, _ = _run(fx)
    assert len(frames) == len(aus)
    assert dp.lost == 0
    assert dp.dropped == 0
    assert dp.malformed == 0
    for i, (au, frame) in enumerate(zip(aus, frames, strict=True)):
        assert frame.data == _expected_sample(au, fx.codec)
        assert frame.keyframe == is_key(au, fx.codec)
        assert frame.ticks == i * 9000
    assert frames[0].keyframe
    assert frames[0].params is not None
    assert frames[0].params.complete
    assert frames[0].params.width == fx.spec.width
    assert frames[0].params.height == fx.spec.height


@settings(max_examples=12, deadline=None, derandomize=True)
@given(mtu=st.integers(min_value=200, max_value=1460), ts0=st.integers(0, 2**32 - 1))
def test_any_mtu_and_timestamp_wrap(main_h264: Fixture, mtu: int, ts0: int) -> None:
    aus, frames, _, _ = _run(main_h264, mtu=mtu, ts0=ts0, limit=25)
    assert [f.ticks for f in frames] == [i * 9000 for i in range(len(aus))]
    assert frames[3].data == _expected_sample(aus[3], "h264")


def test_packet_loss_drops_until_next_keyframe(main_h264: Fixture) -> None:
    aus = access_units(main_h264.video.read_bytes(), "h264")[:45]
    pk = Packetizer("h264")
    frames: list[Frame] = []
    dp = H264Depacketizer(on_frame=frames.append)
    rng = random.Random(7)
    lost_in = 5
    for i, au in enumerate(aus):
        packets = pk.video(au, i * 9000)
        if i == lost_in:
            del packets[rng.randrange(len(packets))]
        for p in packets:
            dp.push(p)
    assert dp.lost == 1
    keys = [i for i, au in enumerate(aus) if is_key(au, "h264")]
    next_key = next(k for k in keys if k > lost_in)
    got = [f.ticks // 9000 for f in frames]
    assert got == list(range(lost_in)) + list(range(next_key, len(aus)))
    assert frames[lost_in].keyframe


def test_stream_starting_mid_gop_waits_for_keyframe(main_h264: Fixture) -> None:
    aus = access_units(main_h264.video.read_bytes(), "h264")[5:30]
    pk = Packetizer("h264")
    frames: list[Frame] = []
    dp = H264Depacketizer(on_frame=frames.append)
    for i, au in enumerate(aus):
        for p in pk.video(au, i * 3000):
            dp.push(p)
    assert frames
    assert frames[0].keyframe
    assert dp.dropped == next(i for i, au in enumerate(aus) if is_key(au, "h264"))


def test_parameter_set_change_gives_new_params(main_h264: Fixture, sub_h264: Fixture) -> None:
    a = access_units(main_h264.video.read_bytes(), "h264")[:20]
    b = access_units(sub_h264.video.read_bytes(), "h264")[:20]
    pk = Packetizer("h264")
    frames: list[Frame] = []
    dp = H264Depacketizer(on_frame=frames.append)
    for i, au in enumerate(a + b):
        for p in pk.video(au, i * 9000):
            dp.push(p)
    assert len(frames) == 40
    assert frames[0].params is frames[19].params
    assert frames[20].params != frames[19].params
    assert frames[20].params is not None
    assert frames[20].params.width == 640


def test_timestamp_extender() -> None:
    ext = TimestampExtender()
    assert ext.extend(2**32 - 100) == 0
    assert ext.extend(50) == 150  # wrapped
    assert ext.extend(2**32 - 10) == 90  # a step back (across the wrap) is a negative delta
    ext.set_base(1000)
    assert ext.extend(4000) == 3000


def test_malformed_packets_are_counted_not_raised() -> None:
    dp = H264Depacketizer()
    for junk in (
        b"",
        b"\x80",
        b"\x00" * 12,
        b"\x80\x60" + b"\x00" * 10,
        b"\xa0\x60" + b"\x00" * 9 + b"\xff",
    ):
        dp.push(junk)
    assert dp.malformed == 5
    assert dp.frames == 0


def test_aac_depacketizer(car_av: Fixture) -> None:
    assert car_av.audio is not None
    pairs = list(adts_frames(car_av.audio.read_bytes()))
    config = parse_aac_config(adts_config(pairs[0][0]))
    frames: list[Frame] = []
    dp = make_depacketizer(
        "MPEG4-GENERIC",
        track=1,
        fmtp={
            "mode": "AAC-hbr",
            "config": config.config.hex(),
            "sizelength": "13",
            "indexlength": "3",
            "indexdeltalength": "3",
        },
        on_frame=frames.append,
    )
    assert isinstance(dp, AacDepacketizer)
    raw = [f for _h, f in pairs]
    pk = Packetizer("aac", pt=97)
    ts = 0
    i = 0
    while i < len(raw):  # 1..3 AUs per packet
        group = raw[i : i + 1 + i % 3]
        for p in pk.aac(group, ts):
            dp.push(p)
        ts += 1024 * len(group)
        i += len(group)
    assert [f.data for f in frames] == raw
    assert [f.ticks for f in frames] == [k * 1024 for k in range(len(raw))]


def test_aac_fragmented_access_unit() -> None:
    config = parse_aac_config(bytes.fromhex("1188"))
    frames: list[Frame] = []
    dp = AacDepacketizer(config, on_frame=frames.append)
    au = bytes(range(256)) * 10
    header = struct.pack(">HH", 16, len(au) << 3)
    for seq, (chunk, marker) in enumerate(
        [(au[:1000], False), (au[1000:2000], False), (au[2000:], True)]
    ):
        pkt = (
            struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 97, seq, 5000, 1) + header + chunk
        )
        dp.push(pkt)
    assert len(frames) == 1
    assert frames[0].data == au
