"""Asyncio RTSP/1.0 client (RFC 2326) with RTP over the RTSP TCP connection.

One TCP connection carries the RTSP dialogue and the interleaved RTP/RTCP packets
(``$`` + channel + length framing, RFC 2326 §10.12). The connection is an
:class:`asyncio.Protocol`: every chunk the kernel hands over is split in place into
RTP packets, which are passed as ``memoryview`` slices of the received ``bytes`` to the
per-channel handler (a depacketizer's ``push``) synchronously, without a coroutine
switch per packet.

Credentials are given separately from the URL (:class:`Credentials`); use
:func:`split_credentials` to turn ``rtsp://user:pass@host/...`` into a clean URL plus
credentials and :func:`redact_url` for anything displayed or logged. Basic and Digest
(RFC 2617, MD5 or SHA-256, with or without ``qop=auth``) authentication are supported.

Errors are typed and carry a readable message: :class:`InvalidStreamURL` (raised before
any network activity), :class:`CameraUnreachable`, :class:`AuthenticationFailed`,
:class:`StreamStalled`, :class:`UnsupportedStream`, :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = [
    "AuthenticationFailed",
    "CameraUnreachable",
    "Credentials",
    "InvalidStreamURL",
    "MediaTrack",
    "ProtocolError",
    "Response",
    "RtspClient",
    "RtspError",
    "SessionDescription",
    "StreamStalled",
    "UnsupportedStream",
    "parse_sdp",
    "redact_url",
    "split_credentials",
    "validate_url",
]

log = logging.getLogger("vigil.media.rtsp")

PacketHandler = Callable[[memoryview], None]
DEFAULT_PORT = 554
_MAX_HEADER = 64 * 1024


class RtspError(Exception):
    """Base class of RTSP client errors; ``str(exc)`` is a human-readable message."""


class InvalidStreamURL(RtspError, ValueError):
    """The stream URL is malformed (scheme, host or port)."""


class CameraUnreachable(RtspError):
    """The camera could not be reached or the connection was lost."""


class AuthenticationFailed(RtspError):
    """The camera rejected the credentials (or demanded some and none were given)."""


class StreamStalled(RtspError):
    """The camera stopped answering or sending media."""


class UnsupportedStream(RtspError):
    """The stream uses a codec, transport or feature Vigil does not support."""


class ProtocolError(RtspError):
    """The camera sent something that is not valid RTSP or an unexpected error status."""


# ----------------------------------------------------------------------------- URLs
@dataclass(frozen=True)
class Credentials:
    """User name and password for a camera. The password never appears in ``repr``."""

    username: str
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class StreamURL:
    """A validated RTSP URL without credentials."""

    url: str
    host: str
    port: int


def validate_url(url: str) -> StreamURL:
    """Check an RTSP URL and return it split up; raise :class:`InvalidStreamURL`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidStreamURL("stream URL is empty")
    if any(c.isspace() for c in url):
        raise InvalidStreamURL(f"stream URL contains whitespace: {redact_url(url)!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidStreamURL(f"malformed stream URL {redact_url(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme != "rtsp":
        if scheme in ("rtsps", "rtspu"):
            raise InvalidStreamURL(f"{scheme}:// is not supported, use rtsp://")
        raise InvalidStreamURL(f"stream URL must start with rtsp://, got {redact_url(url)!r}")
    host = parts.hostname or ""
    if not host:
        raise InvalidStreamURL(f"stream URL has no host: {redact_url(url)!r}")
    if not re.fullmatch(r"[A-Za-z0-9._:%-]+", host):
        raise InvalidStreamURL(f"stream URL has an invalid host {host!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidStreamURL(f"stream URL has an invalid port: {redact_url(url)!r}") from exc
    if port == 0:
        raise InvalidStreamURL("stream URL port must be between 1 and 65535")
    clean, _ = split_credentials(url)
    return StreamURL(url=clean, host=host, port=port or DEFAULT_PORT)


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """``rtsp://user:pass@host/x`` -> (``rtsp://host/x``, Credentials('user', 'pass'))."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, Credentials(unquote(user), unquote(password))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to log or display)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:***@{hostport}" if user else f"***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_credentials(url: str, credentials: Credentials | None) -> str:
    """Put credentials into a URL (for tools such as ffmpeg that want them there)."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    userinfo = quote(credentials.username, safe="") + ":" + quote(credentials.password, safe="")
    return urlunsplit(
        (parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment)
    )


def join_control(base: str, control: str) -> str:
    """Resolve an SDP ``a=control`` against the base URL (RFC 2326 C.1.1, camera practice)."""
    control = control.strip()
    if not control or control == "*":
        return base
    if re.match(r"(?i)^rtsp://", control):
        return control
    if control.startswith("/"):
        parts = urlsplit(base)
        return urlunsplit((parts.scheme, parts.netloc, control, "", ""))
    return base + ("" if base.endswith("/") else "/") + control


# ------------------------------------------------------------------------------ SDP
@dataclass
class MediaTrack:
    """One ``m=`` section of an SDP description."""

    index: int
    media: str  # "video", "audio", ...
    payload_type: int
    encoding: str = ""
    clock_rate: int = 0
    channels: int = 1
    fmtp: dict[str, str] = field(default_factory=dict)
    control: str = ""
    framerate: float | None = None


@dataclass
class SessionDescription:
    """Parsed SDP with control URLs resolved to absolute URLs."""

    base_url: str
    tracks: list[MediaTrack]
    control: str
    text: str

    def first(self, media: str, encodings: tuple[str, ...]) -> MediaTrack | None:
        """The first ``media`` track whose encoding is one of ``encodings``."""
        for t in self.tracks:
            if t.media == media and t.encoding.upper() in encodings:
                return t
        return None


def parse_sdp(text: str, base_url: str) -> SessionDescription:
    """Parse an SDP (RFC 4566) session description from DESCRIBE."""
    tracks: list[MediaTrack] = []
    session_control = ""
    current: MediaTrack | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            fields = value.split()
            if len(fields) < 4:
                raise ProtocolError(f"malformed SDP media line {line!r}")
            try:
                pt = int(fields[3])
            except ValueError as exc:
                raise ProtocolError(f"malformed SDP payload type in {line!r}") from exc
            current = MediaTrack(index=len(tracks), media=fields[0].lower(), payload_type=pt)
            tracks.append(current)
        elif kind == "a":
            name, _, attr = value.partition(":")
            name = name.lower()
            if name == "control":
                if current is None:
                    session_control = attr
                else:
                    current.control = attr
            elif current is None:
                continue
            elif name == "rtpmap":
                pt_text, _, enc = attr.partition(" ")
                if pt_text.strip() == str(current.payload_type):
                    bits = enc.strip().split("/")
                    current.encoding = bits[0]
                    if len(bits) > 1 and bits[1].isdigit():
                        current.clock_rate = int(bits[1])
                    if len(bits) > 2 and bits[2].isdigit():
                        current.channels = int(bits[2])
            elif name == "fmtp":
                pt_text, _, params = attr.partition(" ")
                if pt_text.strip() == str(current.payload_type):
                    for item in params.split(";"):
                        key, sep, val = item.strip().partition("=")
                        if sep:
                            current.fmtp[key.strip().lower()] = val.strip()
            elif name == "framerate":
                with contextlib.suppress(ValueError):
                    current.framerate = float(attr)
    session_url = join_control(base_url, session_control) if session_control else base_url
    for t in tracks:
        t.control = join_control(base_url, t.control)
        if not t.encoding and t.payload_type < 96:
            t.encoding = {0: "PCMU", 8: "PCMA", 26: "JPEG", 14: "MPA", 32: "MPV"}.get(
                t.payload_type, ""
            )
            t.clock_rate = t.clock_rate or (90000 if t.media == "video" else 8000)
    return SessionDescription(base_url=base_url, tracks=tracks, control=session_url, text=text)


# ------------------------------------------------------------------------ messages
@dataclass
class Response:
    """An RTSP response (header names lower-cased, repeated headers kept in order)."""

    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        """First value of header ``name``."""
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def cseq(self) -> int:
        """The CSeq this response answers (-1 if absent or invalid)."""
        try:
            return int(self.header("cseq", "-1"))
        except ValueError:
            return -1


def _parse_message(data: bytes) -> tuple[str, dict[str, list[str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", errors="replace").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers, body


def _auth_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for m in re.finditer(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))', value):
        params[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return params


class _Authenticator:
    """Computes Authorization headers after a 401 challenge."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.scheme = ""
        self.params: dict[str, str] = {}
        self.nc = 0

    def challenge(self, values: list[str]) -> bool:
        """Pick the strongest supported challenge; False if none is supported."""
        digest = [v for v in values if v.lower().startswith("digest")]
        basic = [v for v in values if v.lower().startswith("basic")]
        for v in digest:
            params = _auth_params(v[6:])
            algo = params.get("algorithm", "MD5").upper()
            if algo in ("MD5", "SHA-256") and "nonce" in params:
                self.scheme, self.params, self.nc = "digest", params, 0
                return True
        if basic:
            self.scheme, self.params = "basic", _auth_params(basic[0][5:])
            return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        c = self.credentials
        if self.scheme == "basic":
            token = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
            return f"Basic {token}"
        if self.scheme != "digest":
            return None
        p = self.params
        algo = p.get("algorithm", "MD5").upper()

        def h(text: str) -> str:
            if algo == "SHA-256":
                return hashlib.sha256(text.encode()).hexdigest()
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

        realm, nonce = p.get("realm", ""), p.get("nonce", "")
        ha1 = h(f"{c.username}:{realm}:{c.password}")
        ha2 = h(f"{method}:{uri}")
        qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
        parts = [
            f'username="{c.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
        ]  # fmt: skip
        if "auth" in qops:
            self.nc += 1
            nc = f"{self.nc:08x}"
            cnonce = os.urandom(8).hex()
            response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = h(f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{response}"')
        if "algorithm" in p:
            parts.append(f"algorithm={p['algorithm']}")
        if "opaque" in p:
            parts.append(f'opaque="{p["opaque"]}"')
        return "Digest " + ", ".join(parts)


# ------------------------------------------------------------------------ protocol
class _Connection(asyncio.Protocol):
    """Splits the TCP byte stream into RTSP messages and interleaved packets."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.handlers: list[PacketHandler | None] = [None] * 256
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_reason: RtspError | None = None
        self._buf = b""
        self.bytes_received = 0
        self.garbage = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.close_reason or CameraUnreachable(
            "connection to the camera was closed" + (f": {exc}" if exc else "")
        )
        self.close_reason = reason
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(reason)
        self.pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        view = memoryview(buf)
        handlers = self.handlers
        while pos < n:
            if buf[pos] == 0x24:
                if pos + 4 > n:
                    break
                end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if end > n:
                    break
                handler = handlers[buf[pos + 1]]
                if handler is not None:
                    handler(view[pos + 4 : end])
                pos = end
                continue
            if not (buf.startswith(b"RTSP/", pos) or buf[pos : pos + 1].isalpha()):
                nxt = buf.find(b"$", pos + 1)
                skip = (nxt if nxt >= 0 else n) - pos
                self.garbage += skip
                pos += skip
                continue
            head_end = buf.find(b"\r\n\r\n", pos)
            if head_end < 0:
                if n - pos > _MAX_HEADER:
                    self._fail(ProtocolError("RTSP message header too long"))
                    return
                break
            m = re.search(rb"(?im)^content-length:\s*(\d+)", buf[pos:head_end])
            end = head_end + 4 + (int(m.group(1)) if m else 0)
            if end > n:
                break
            self._message(buf[pos:end])
            pos = end
        self._buf = buf[pos:] if pos < n else b""

    def _message(self, data: bytes) -> None:
        first, headers, body = _parse_message(data)
        if not first.startswith("RTSP/"):
            # A request from the server (e.g. GET_PARAMETER/ANNOUNCE): acknowledge it.
            cseq = headers.get("cseq", ["0"])[0]
            if self.transport is not None:
                self.transport.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n".encode())
            return
        bits = first.split(" ", 2)
        try:
            status = int(bits[1])
        except (IndexError, ValueError):
            self._fail(ProtocolError(f"malformed RTSP status line {first[:80]!r}"))
            return
        resp = Response(status, bits[2] if len(bits) > 2 else "", headers, body)
        fut = self.pending.pop(resp.cseq, None)
        if fut is not None and not fut.done():
            fut.set_result(resp)

    def _fail(self, error: RtspError) -> None:
        self.close_reason = error
        if self.transport is not None:
            self.transport.abort()


class RtspClient:
    """One RTSP session over one TCP connection (RTP interleaved).

    Typical use::

        client = RtspClient(url, credentials)
        desc = await client.start({0: depack_video.push, 1: depack_audio.push})
        await client.closed  # or client.close()
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        connect_timeout: float = 5.0,
        response_timeout: float = 5.0,
        user_agent: str = "Vigil/0.1",
    ) -> None:
        parsed = validate_url(url)
        embedded = split_credentials(url)[1]
        self.url = parsed.url
        self.host = parsed.host
        self.port = parsed.port
        self.credentials = credentials or embedded
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.user_agent = user_agent
        self._conn: _Connection | None = None
        self._cseq = 0
        self._session: str | None = None
        self._session_timeout = 60.0
        self._auth: _Authenticator | None = None
        self._public: set[str] = set()
        self._keepalive: asyncio.Task[None] | None = None
        self.description: SessionDescription | None = None
        self.rtp_info: dict[str, tuple[int | None, int | None]] = {}
        self._channels = 0

    @property
    def display_url(self) -> str:
        """The URL for logs and UI (never contains the password)."""
        return redact_url(self.url)

    @property
    def bytes_received(self) -> int:
        """Bytes received on the connection so far."""
        return self._conn.bytes_received if self._conn else 0

    # --- connection -----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the TCP connection (raises :class:`CameraUnreachable`)."""
        loop = asyncio.get_running_loop()
        conn = _Connection()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: conn, self.host, self.port)
        except TimeoutError as exc:
            raise CameraUnreachable(
                f"no answer from {self.host}:{self.port} within {self.connect_timeout:g} s"
            ) from exc
        except socket.gaierror as exc:
            raise CameraUnreachable(
                f"cannot resolve camera host {self.host!r}: {exc.strerror}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise CameraUnreachable(f"{self.host}:{self.port} refused the connection") from exc
        except OSError as exc:
            raise CameraUnreachable(
                f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._conn = conn
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 512 * 1024)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolves when the connection is gone; see :attr:`close_reason`."""
        if self._conn is None:
            raise ProtocolError("not connected")
        return self._conn.closed

    @property
    def close_reason(self) -> RtspError | None:
        """Why the connection closed (None while open or after a clean close)."""
        return self._conn.close_reason if self._conn else None

    def close(self) -> None:
        """Drop the connection immediately (no TEARDOWN)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._conn is not None and self._conn.transport is not None:
            if self._conn.close_reason is None:
                self._conn.close_reason = CameraUnreachable("connection closed by Vigil")
            self._conn.transport.close()

    async def __aenter__(self) -> RtspClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(RtspError, OSError):
            await self.teardown()
        self.close()

    # --- requests ---------------------------------------------------------------------
    async def request(
        self, method: str, url: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send a request and return the (2xx) response, authenticating once if asked."""
        target = url or self.url
        for attempt in range(3):
            resp = await self._send(method, target, headers or {})
            if resp.status != 401:
                break
            if self.credentials is None:
                raise AuthenticationFailed(
                    f"camera {self.display_url} requires a user name and password"
                )
            challenges = resp.headers.get("www-authenticate", [])
            stale = any("stale=true" in c.lower() for c in challenges)
            if attempt > 0 and not stale:
                raise AuthenticationFailed(
                    f"camera {self.display_url} rejected the user name or password"
                )
            auth = _Authenticator(self.credentials)
            if not auth.challenge(challenges):
                raise UnsupportedStream(
                    f"camera asks for an unsupported authentication scheme: {challenges!r}"
                )
            self._auth = auth
        else:  # pragma: no cover - loop always breaks or raises
            raise AuthenticationFailed(f"camera {self.display_url} rejected the credentials")
        if resp.status == 401:
            raise AuthenticationFailed(
                f"camera {self.display_url} rejected the user name or password"
            )
        if resp.status == 404:
            raise UnsupportedStream(f"camera has no stream at {self.display_url} (404 Not Found)")
        if resp.status == 461:
            raise UnsupportedStream(
                "camera does not support RTP over TCP (461 Unsupported Transport)"
            )
        if not 200 <= resp.status < 300:
            raise ProtocolError(f"{method} failed: {resp.status} {resp.reason}")
        return resp

    async def _send(self, method: str, url: str, headers: dict[str, str]) -> Response:
        conn = self._conn
        if conn is None or conn.transport is None or conn.closed.done():
            raise (
                conn.close_reason
                if conn and conn.close_reason
                else CameraUnreachable("not connected")
            )
        self._cseq += 1
        cseq = self._cseq
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {self.user_agent}"]
        if self._session and method not in ("OPTIONS", "DESCRIBE"):
            lines.append(f"Session: {self._session}")
        if self._auth is not None:
            value = self._auth.header(method, url)
            if value:
                lines.append(f"Authorization: {value}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        conn.pending[cseq] = fut
        conn.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            async with asyncio.timeout(self.response_timeout):
                return await fut
        except TimeoutError as exc:
            conn.pending.pop(cseq, None)
            raise StreamStalled(
                f"camera did not answer {method} within {self.response_timeout:g} s"
            ) from exc

    async def options(self) -> set[str]:
        """OPTIONS: the methods the server supports."""
        resp = await self.request("OPTIONS")
        self._public = {m.strip().upper() for m in resp.header("public").split(",") if m.strip()}
        return self._public

    async def describe(self) -> SessionDescription:
        """DESCRIBE: fetch and parse the SDP, resolving control URLs."""
        resp = await self.request("DESCRIBE", headers={"Accept": "application/sdp"})
        base = resp.header("content-base") or resp.header("content-location") or self.url
        if not base.lower().startswith("rtsp://"):
            base = join_control(self.url, base)
        self.description = parse_sdp(resp.body.decode("utf-8", errors="replace"), base)
        if not self.description.tracks:
            raise UnsupportedStream("the camera's stream description has no media tracks")
        return self.description

    async def setup(self, track: MediaTrack, handler: PacketHandler) -> tuple[int, int]:
        """SETUP ``track`` over TCP interleaved; route its RTP packets to ``handler``."""
        conn = self._conn
        if conn is None:
            raise ProtocolError("not connected")
        rtp, rtcp = self._channels, self._channels + 1
        resp = await self.request(
            "SETUP",
            track.control,
            {"Transport": f"RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}"},
        )
        transport = resp.header("transport")
        if "tcp" not in transport.lower():
            raise UnsupportedStream(f"camera refused RTP over TCP (Transport: {transport})")
        m = re.search(r"interleaved=(\d+)(?:-(\d+))?", transport)
        if m:
            rtp = int(m.group(1))
            rtcp = int(m.group(2)) if m.group(2) else rtp + 1
        session = resp.header("session")
        if session:
            sid, _, rest = session.partition(";")
            self._session = sid.strip()
            t = re.search(r"timeout=(\d+)", rest)
            if t:
                self._session_timeout = max(5.0, float(t.group(1)))
        if not 0 <= rtp < 256 or not 0 <= rtcp < 256:
            raise ProtocolError(f"invalid interleaved channels in {transport!r}")
        conn.handlers[rtp] = handler
        self._channels = max(rtp, rtcp) + 1
        return rtp, rtcp

    async def play(self) -> dict[str, tuple[int | None, int | None]]:
        """PLAY from now; returns RTP-Info ``{control URL: (seq, rtptime)}``; starts keepalive."""
        resp = await self.request(
            "PLAY",
            self.description.control if self.description else self.url,
            {"Range": "npt=0.000-"},
        )
        self.rtp_info = {}
        for item in ",".join(resp.headers.get("rtp-info", [])).split(","):
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (p.partition("=") for p in item.split(";"))
                if k.strip()
            }
            if "url" in fields:
                seq = int(fields["seq"]) if fields.get("seq", "").isdigit() else None
                rtptime = int(fields["rtptime"]) if fields.get("rtptime", "").isdigit() else None
                self.rtp_info[fields["url"]] = (seq, rtptime)
        if self._keepalive is None:
            self._keepalive = asyncio.get_running_loop().create_task(self._keepalive_loop())
        return self.rtp_info

    def rtp_info_for(self, track: MediaTrack) -> tuple[int | None, int | None]:
        """RTP-Info (seq, rtptime) of ``track``, matching absolute or relative URLs."""
        for url, info in self.rtp_info.items():
            if (
                url == track.control
                or track.control.endswith(url)
                or url.endswith(track.control.rsplit("/", 1)[-1])
            ):
                return info
        return (None, None)

    async def teardown(self) -> None:
        """TEARDOWN the session (best effort, short timeout)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._session is None or self._conn is None or self._conn.closed.done():
            return
        saved = self.response_timeout
        self.response_timeout = min(saved, 2.0)
        try:
            await self.request(
                "TEARDOWN", self.description.control if self.description else self.url
            )
        finally:
            self.response_timeout = saved
            self._session = None

    async def _keepalive_loop(self) -> None:
        method = "GET_PARAMETER" if "GET_PARAMETER" in self._public else "OPTIONS"
        while True:
            await asyncio.sleep(self._session_timeout / 2)
            try:
                await self.request(
                    method,
                    self.description.control
                    if self.description and method != "OPTIONS"
                    else self.url,
                )
            except asyncio.CancelledError:
                raise
            except RtspError as exc:
                log.debug("keepalive to %s failed: %s", self.display_url, exc)
                if self._conn is None or self._conn.closed.done():
                    return

    async def start(
        self,
        handlers: dict[int, PacketHandler],
    ) -> SessionDescription:
        """Connect if needed, OPTIONS, DESCRIBE, SETUP the tracks in ``handlers`` (by SDP
        track index) and PLAY."""
        if self._conn is None:
            await self.connect()
        await self.options()
        desc = self.description or await self.describe()
        for index, handler in handlers.items():
            await self.setup(desc.tracks[index], handler)
        await self.play()
        return desc
