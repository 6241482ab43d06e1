"""Camera stream URLs: validation, and keeping credentials out of the stored URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

ALLOWED_SCHEMES = ("rtsp", "rtsps")


class InvalidStreamURL(ValueError):
    """The URL cannot be a camera stream; the message says why."""


@dataclass(frozen=True)
class StreamURL:
    url: str  # without credentials
    username: str = ""
    password: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)


def parse_stream_url(raw: str) -> StreamURL:
    """Validate a camera URL and split any ``user:password@`` out of it."""
    text = (raw or "").strip()
    if not text:
        raise InvalidStreamURL("the URL is empty")
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise InvalidStreamURL("the URL contains spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise InvalidStreamURL(f"the URL cannot be parsed ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "none"
        raise InvalidStreamURL(f"the scheme must be rtsp:// or rtsps:// (got '{shown}')")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidStreamURL("the port must be a number from 1 to 65535") from exc
    if not host:
        raise InvalidStreamURL("the URL has no host")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidStreamURL("the port must be a number from 1 to 65535")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    clean = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return StreamURL(clean, username, password)


def with_credentials(url: str, username: str, password: str) -> str:
    """The URL to hand to the stream client; never store, show or log the result."""
    if not username and not password:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, ""))


def redact(url: str) -> str:
    """A URL safe to show: any password replaced by '***'."""
    try:
        parts = urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        user = parts.username or ""
        return urlunsplit(
            (parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment)
        )
    except ValueError:
        return "<invalid URL>"
