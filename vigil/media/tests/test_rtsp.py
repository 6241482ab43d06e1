"""RTSP client: URL handling, SDP, auth, and sessions against the real simulator."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator

import pytest

from vigil.media import rtsp
from vigil.media.rtp import Frame, make_depacketizer
from vigil.media.rtsp import (
    AuthenticationFailed,
    CameraUnreachable,
    Credentials,
    InvalidStreamURL,
    RtspClient,
    UnsupportedStream,
    join_control,
    parse_sdp,
    redact_url,
    split_credentials,
    validate_url,
)
from vigil.media.simulator import Simulator, free_port
from vigil.media.tests.conftest import require_gst


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://cam/stream",
        "rtsp://",
        "rtsp:///path",
        "rtsp://cam:99999/x",
        "rtsp://cam:abc/x",
        "rtsp://cam:0/x",
        "rtsp://ca m/x",
        "rtsps://cam/x",
        "cam/stream",
    ],
)
def test_malformed_urls_rejected_before_network(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(InvalidStreamURL) as info:
        RtspClient(url)
    assert str(info.value)


def test_validate_url_defaults() -> None:
    u = validate_url("rtsp://10.0.0.5/Streaming/Channels/101")
    assert (u.host, u.port) == ("10.0.0.5", 554)
    assert validate_url("rtsp://[::1]:8554/x").port == 8554


def test_split_and_redact_credentials() -> None:
    url, creds = split_credentials(
        "rtsp://admin:p%40ss:w@10.0.0.5:554/cam/realmonitor?channel=1&subtype=0"
    )
    assert url == "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0"
    assert creds == Credentials("admin", "p@ss:w")
    assert "p@ss" not in repr(creds)
    assert redact_url("rtsp://admin:secret@h/x") == "rtsp://admin:***@h/x"
    assert redact_url("rtsp://h/x") == "rtsp://h/x"
    assert split_credentials("rtsp://h/x") == ("rtsp://h/x", None)


def test_control_url_resolution() -> None:
    base = "rtsp://h/Streaming/Channels/101"
    assert join_control(base, "trackID=1") == "rtsp://h/Streaming/Channels/101/trackID=1"
    assert join_control(base + "/", "trackID=1") == "rtsp://h/Streaming/Channels/101/trackID=1"
    assert join_control(base, "rtsp://other/abs") == "rtsp://other/abs"
    assert join_control(base, "*") == base
    assert join_control("rtsp://h/cam/realmonitor?channel=1&subtype=0/", "trackID=0").endswith(
        "subtype=0/trackID=0"
    )


SDP = """v=0\r
o=- 1 1 IN IP4 10.0.0.5\r
s=Session\r
a=control:*\r
m=video 0 RTP/AVP 96\r
a=rtpmap:96 H264/90000\r
a=fmtp:96 packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z2QAKKw=,aO48gA==\r
a=control:trackID=1\r
m=audio 0 RTP/AVP 8\r
a=control:rtsp://10.0.0.5/abs/track2\r
m=audio 0 RTP/AVP 97\r
a=rtpmap:97 MPEG4-GENERIC/16000/1\r
a=fmtp:97 streamtype=5; mode=AAC-hbr; config=1408; SizeLength=13; IndexLength=3; \
IndexDeltaLength=3\r
a=control:trackID=3\r
"""


def test_parse_sdp() -> None:
    desc = parse_sdp(SDP, "rtsp://10.0.0.5/Streaming/Channels/101/")
    v, pcma, aac = desc.tracks
    assert (v.encoding, v.clock_rate, v.control) == (
        "H264",
        90000,
        "rtsp://10.0.0.5/Streaming/Channels/101/trackID=1",
    )
    assert v.fmtp["sprop-parameter-sets"] == "Z2QAKKw=,aO48gA=="
    assert (pcma.encoding, pcma.control) == ("PCMA", "rtsp://10.0.0.5/abs/track2")
    assert (aac.clock_rate, aac.fmtp["sizelength"], aac.fmtp["mode"]) == (16000, "13", "AAC-hbr")
    assert desc.control == "rtsp://10.0.0.5/Streaming/Channels/101/"
    assert desc.first("audio", ("MPEG4-GENERIC",)) is aac


def test_digest_response_matches_rfc2617(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtsp.os, "urandom", lambda n: bytes.fromhex("0a4f113b"))
    auth = rtsp._Authenticator(Credentials("Mufasa", "Circle Of Life"))
    assert auth.challenge(
        [
            'Basic realm="x"',
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        ]
    )
    header = auth.header("GET", "/dir/index.html")
    assert header is not None
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header
    assert 'cnonce="0a4f113b"' in header


def test_basic_header() -> None:
    auth = rtsp._Authenticator(Credentials("Aladdin", "open sesame"))
    assert auth.challenge(['Basic realm="cam"'])
    assert auth.header("DESCRIBE", "rtsp://h/") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_unreachable_camera_fails_fast() -> None:
    port = free_port()

    async def go() -> None:
        client = RtspClient(f"rtsp://127.0.0.1:{port}/x", connect_timeout=2)
        await client.connect()

    with pytest.raises(CameraUnreachable, match="refused"):
        asyncio.run(go())


def test_unresolvable_host() -> None:
    async def go() -> None:
        await RtspClient("rtsp://no-such-camera.invalid/x", connect_timeout=3).connect()

    with pytest.raises(CameraUnreachable):
        asyncio.run(go())


def test_silent_server_times_out() -> None:
    """A TCP server that accepts but never answers: StreamStalled on the response."""

    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = RtspClient(f"rtsp://127.0.0.1:{port}/x", response_timeout=0.5)
            await client.connect()
            await client.options()
        finally:
            server.close()

    with pytest.raises(rtsp.StreamStalled, match="did not answer OPTIONS"):
        asyncio.run(go())


# ------------------------------------------------------------------ against the simulator
@pytest.fixture(scope="module")
def auth_sim(main_h264: object) -> Iterator[Simulator]:
    require_gst()
    sim = Simulator.standard(
        1, sub=False, user="viewer", password="s3cr:t@", auth_methods=("basic",)
    )
    with sim:
        yield sim


@pytest.fixture(scope="module")
def digest_sim(main_h264: object) -> Iterator[Simulator]:
    require_gst()
    sim = Simulator.standard(
        1, sub=False, user="viewer", password="d1gest", auth_methods=("digest",)
    )
    with sim:
        yield sim


async def _play(url: str, creds: Credentials | None, seconds: float = 1.5) -> list[Frame]:
    frames: list[Frame] = []
    client = RtspClient(url, creds)
    await client.connect()
    await client.options()
    desc = await client.describe()
    track = desc.tracks[0]
    dp = make_depacketizer(track.encoding, track=0, fmtp=track.fmtp, on_frame=frames.append)
    await client.setup(track, dp.push)
    await client.play()
    await asyncio.sleep(seconds)
    await client.teardown()
    client.close()
    return frames


@pytest.mark.rtsp
@pytest.mark.footage
@pytest.mark.parametrize("which", ["auth_sim", "digest_sim"])
def test_auth_with_separate_credentials(which: str, request: pytest.FixtureRequest) -> None:
    sim: Simulator = request.getfixturevalue(which)
    url = sim.url("CAM01")
    assert "@" not in url
    assert sim.password is not None
    frames = asyncio.run(_play(url, Credentials("viewer", sim.password)))
    assert len(frames) >= 8
    assert frames[0].keyframe
    with pytest.raises(AuthenticationFailed, match="rejected"):
        asyncio.run(_play(url, Credentials("viewer", "wrong"), 0))
    with pytest.raises(AuthenticationFailed, match="requires"):
        asyncio.run(_play(url, None, 0))


@pytest.mark.rtsp
@pytest.mark.footage
def test_credentials_in_url_are_split(
    auth_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    url = auth_sim.url("CAM01", with_credentials=True)
    client = RtspClient(url)
    assert client.credentials == Credentials("viewer", "s3cr:t@")
    assert "s3cr" not in client.url
    assert "s3cr" not in client.display_url


@pytest.mark.rtsp
@pytest.mark.footage
def test_unknown_mount_is_unsupported(auth_sim: Simulator) -> None:
    url = auth_sim.url("NOPE")
    with pytest.raises(UnsupportedStream, match="404"):
        asyncio.run(_play(url, Credentials("viewer", "s3cr:t@"), 0))


def test_connection_splits_packets_and_responses_across_reads() -> None:
    """RTP packets and RTSP responses split at arbitrary byte boundaries."""

    async def go() -> None:
        conn = rtsp._Connection()
        got: list[bytes] = []
        conn.handlers[0] = lambda mv: got.append(bytes(mv))
        fut: asyncio.Future[rtsp.Response] = asyncio.get_running_loop().create_future()
        conn.pending[7] = fut
        packets = [bytes([0x80, 96, 0, i]) + bytes(8) + bytes([i]) * (50 + i) for i in range(20)]
        stream = b""
        for i, p in enumerate(packets):
            stream += b"$\x00" + len(p).to_bytes(2, "big") + p
            if i == 9:
                stream += b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nContent-Length: 4\r\n\r\nbody"
            if i == 12:
                stream += b"$\x01\x00\x04abcd"  # RTCP on a channel nobody listens to
        rng = random.Random(3)
        pos = 0
        while pos < len(stream):
            n = rng.randint(1, 40)
            conn.data_received(stream[pos : pos + n])
            pos += n
        assert got == packets
        resp = fut.result()
        assert (resp.status, resp.body, resp.cseq) == (200, b"body", 7)
        assert conn.garbage == 0

    asyncio.run(go())


def test_keepalive_and_session_timeout() -> None:
    """A minimal RTSP server with a 5 s session timeout receives GET_PARAMETER keepalives."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode().split("\r\n")
            method = lines[0].split()[0]
            seen.append(method)
            cseq = next(v for k, _, v in (x.partition(": ") for x in lines) if k.lower() == "cseq")
            extra = ""
            body = ""
            if method == "OPTIONS":
                extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n"
            elif method == "DESCRIBE":
                body = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:v\r\n"
                extra = "Content-Base: rtsp://h/s/\r\nContent-Type: application/sdp\r\n"
            elif method == "SETUP":
                extra = (
                    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: abc;timeout=5\r\n"
                )
            elif method == "PLAY":
                extra = "RTP-Info: url=rtsp://h/s/v;seq=1;rtptime=1000\r\n"
            head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode())

    async def go() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = RtspClient(f"rtsp://127.0.0.1:{port}/s")
        desc = await client.start({0: lambda mv: None})
        assert desc.tracks[0].control == "rtsp://h/s/v"
        assert client.rtp_info_for(desc.tracks[0]) == (1, 1000)
        await asyncio.sleep(2.8)
        await client.teardown()
        client.close()
        server.close()

    asyncio.run(go())
    assert seen == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "TEARDOWN"]
