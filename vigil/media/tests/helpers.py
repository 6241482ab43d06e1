"""Test helpers: fixtures, a reference RTP packetizer and ffprobe wrappers."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.media.codecs import parse_aac_config, split_annexb
from vigil.media.rtp import Frame, H264Depacketizer, H265Depacketizer
from vigil.media.simulator.fixtures import Fixture, FixtureSpec, FootageMissing, build_fixture


def fixture_or_skip(spec: FixtureSpec) -> Fixture:
    """Build (or reuse) a footage-derived fixture, skipping the test without footage."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI not installed")
    try:
        return build_fixture(spec)
    except FootageMissing as exc:
        pytest.skip(f"real sample footage unavailable: {exc}")


def access_units(data: bytes, codec: str) -> list[list[bytes]]:
    """Group Annex-B NAL units into access units (first slice of a picture starts one)."""
    aus: list[list[bytes]] = []
    current: list[bytes] = []
    pending: list[bytes] = []
    for nal in split_annexb(data):
        if codec == "h265":
            t = (nal[0] >> 1) & 0x3F
            vcl = t < 32
            first = vcl and len(nal) > 2 and bool(nal[2] & 0x80)
        else:
            t = nal[0] & 0x1F
            vcl = 1 <= t <= 5
            first = vcl and len(nal) > 1 and bool(nal[1] & 0x80)
        if not vcl:
            pending.append(nal)
            continue
        if first and current:
            aus.append(current)
            current = []
        current += pending
        pending = []
        current.append(nal)
    if current:
        aus.append(current)
    return aus


def is_key(au: list[bytes], codec: str) -> bool:
    """True for an IDR (H.264) / IRAP (H.265) access unit."""
    if codec == "h265":
        return any(16 <= (n[0] >> 1) & 0x3F <= 23 for n in au)
    return any(n[0] & 0x1F == 5 for n in au)


class Packetizer:
    """Reference RFC 6184 / RFC 7798 / RFC 3640 packetizer (tests only)."""

    def __init__(
        self, codec: str, *, mtu: int = 1400, pt: int = 96, seq: int = 65500, ssrc: int = 0x1234
    ) -> None:
        self.codec = codec
        self.mtu = mtu
        self.pt = pt
        self.seq = seq
        self.ssrc = ssrc

    def _rtp(self, payload: bytes, ts: int, marker: bool) -> bytes:
        header = struct.pack(
            ">BBHII",
            0x80,
            (0x80 if marker else 0) | self.pt,
            self.seq & 0xFFFF,
            ts & 0xFFFFFFFF,
            self.ssrc,
        )
        self.seq = (self.seq + 1) & 0xFFFF
        return header + payload

    def video(self, au: list[bytes], ts: int) -> list[bytes]:
        """Packets for one access unit: aggregates small NALs, fragments large ones."""
        hlen = 2 if self.codec == "h265" else 1
        packets: list[tuple[bytes, bool]] = []
        agg: list[bytes] = []

        def flush_agg() -> None:
            if not agg:
                return
            if len(agg) == 1:
                packets.append((agg[0], False))
            elif self.codec == "h265":
                hdr = bytes(((48 << 1), 1))
                packets.append((hdr + b"".join(struct.pack(">H", len(n)) + n for n in agg), False))
            else:
                nri = max(n[0] & 0x60 for n in agg)
                packets.append(
                    (
                        bytes((nri | 24,)) + b"".join(struct.pack(">H", len(n)) + n for n in agg),
                        False,
                    )
                )
            agg.clear()

        for nal in au:
            if len(nal) <= self.mtu:
                if sum(len(n) + 2 for n in agg) + len(nal) + 2 + hlen > self.mtu:
                    flush_agg()
                agg.append(nal)
                continue
            flush_agg()
            body = nal[hlen:]
            chunk = self.mtu - hlen - 1
            for i in range(0, len(body), chunk):
                start = i == 0
                end = i + chunk >= len(body)
                if self.codec == "h265":
                    t = (nal[0] >> 1) & 0x3F
                    ind = bytes(((nal[0] & 0x81) | (49 << 1), nal[1]))
                    fu = bytes(((0x80 if start else 0) | (0x40 if end else 0) | t,))
                else:
                    ind = bytes(((nal[0] & 0xE0) | 28,))
                    fu = bytes(((0x80 if start else 0) | (0x40 if end else 0) | (nal[0] & 0x1F),))
                packets.append((ind + fu + body[i : i + chunk], False))
        flush_agg()
        return [self._rtp(p, ts, i == len(packets) - 1) for i, (p, _m) in enumerate(packets)]

    def aac(self, frames: list[bytes], ts: int) -> list[bytes]:
        """One AAC-hbr packet carrying ``frames`` (13-bit sizes, 3-bit indexes)."""
        headers = b"".join(struct.pack(">H", len(f) << 3) for f in frames)
        payload = struct.pack(">H", 16 * len(frames)) + headers + b"".join(frames)
        return [self._rtp(payload, ts, True)]


def adts_frames(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(ADTS header, raw AAC frame) pairs."""
    i = 0
    while i + 7 <= len(data):
        length = ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        hlen = 7 if data[i + 1] & 1 else 9
        yield data[i : i + hlen], data[i + hlen : i + length]
        i += length


def adts_config(header: bytes) -> bytes:
    """AudioSpecificConfig from an ADTS header."""
    profile = (header[2] >> 6) + 1
    freq = (header[2] >> 2) & 0x0F
    channels = ((header[2] & 1) << 2) | (header[3] >> 6)
    return struct.pack(">H", (profile << 11) | (freq << 7) | (channels << 3))


def ffprobe(path: Path | str, *, frames: bool = False) -> dict[str, Any]:
    """ffprobe JSON for ``path`` (streams + format, and decoded frame count if asked)."""
    cmd = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json"]
    if frames:
        cmd.insert(1, "-count_frames")
    out = subprocess.run([*cmd, str(path)], capture_output=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


def decode_frames(path: Path | str) -> tuple[int, str]:
    """Decode every video frame with ffmpeg; return (frames decoded, stderr)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    text = probe.stdout.decode().strip().split(",")[0]
    return (int(text) if text.isdigit() else 0), out.stderr.decode(errors="replace")


def fixture_frames(
    fx: Fixture, limit: int | None = None, *, fps: float | None = None
) -> list[Frame]:
    """Video frames of a fixture through the real packetizer -> depacketizer path."""
    aus = access_units(fx.video.read_bytes(), fx.codec)
    if limit is not None:
        aus = aus[:limit]
    step = round(90000 / (fps or fx.spec.fps))
    frames: list[Frame] = []
    dp = (
        H265Depacketizer(on_frame=frames.append)
        if fx.codec == "h265"
        else H264Depacketizer(on_frame=frames.append)
    )
    pk = Packetizer(fx.codec)
    for i, au in enumerate(aus):
        for p in pk.video(au, i * step):
            dp.push(p)
    return frames


def audio_frames(fx: Fixture) -> tuple[Any, list[Any]]:
    """(AacConfig, audio Frames on track 1) of a fixture with ADTS audio."""
    assert fx.audio is not None
    pairs = list(adts_frames(fx.audio.read_bytes()))
    config = parse_aac_config(adts_config(pairs[0][0]))
    return config, [Frame(1, i * 1024, raw, True) for i, (_h, raw) in enumerate(pairs)]
