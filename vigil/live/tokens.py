"""Media tokens: unguessable, short-lived, bound to one browser session.

A token is a signed (``django.core.signing``, the site's secret key) description of what
its holder opened through the API: the session (as a keyed hash, never the session key
itself), the user, the cameras, and for playback the time range. The audit entry made
when the session was opened travels in it, so refreshing a token or fetching media
never makes a second entry. Holding a token is not enough: every media request also
needs the same signed-in session, and asks the permission service again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "vigil.live.media"


class TokenInvalid(Exception):
    """The token is malformed, forged, expired or for another session."""


def session_tag(session_key: str | None) -> str:
    """A keyed hash of the session key (the key itself must never appear in a URL)."""
    if not session_key:
        return ""
    return salted_hmac("vigil.live.session", session_key).hexdigest()[:32]


def issue(payload: dict[str, Any]) -> str:
    return signing.dumps(payload, salt=SALT, compress=True)


def read(
    token: str, *, session_key: str | None, user_id: int | None, max_age: int | None = None
) -> dict[str, Any]:
    """The payload of a valid token for this session and user (raises TokenInvalid)."""
    age = settings.VIGIL.live.token_seconds if max_age is None else max_age
    try:
        payload = signing.loads(token, salt=SALT, max_age=age)
    except signing.SignatureExpired as exc:
        raise TokenInvalid("expired") from exc
    except signing.BadSignature as exc:
        raise TokenInvalid("bad signature") from exc
    if not isinstance(payload, dict):
        raise TokenInvalid("malformed")
    tag = session_tag(session_key)
    if not tag or not constant_time_compare(str(payload.get("s", "")), tag):
        raise TokenInvalid("another session")
    if user_id is None or payload.get("u") != user_id:
        raise TokenInvalid("another user")
    return payload
