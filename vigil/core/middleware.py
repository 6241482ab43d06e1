"""Session expiry, two-factor enforcement and security headers."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.utils.translation import gettext as _

AUTH_AT_KEY = "vigil_auth_at"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SessionExpiryMiddleware:
    """Absolute expiry: a session ends N hours after sign-in however active it is.
    (Idle expiry is the cookie age, refreshed on every request.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        started = session.get(AUTH_AT_KEY)
        if (
            started is not None
            and time.time() - float(started) > settings.VIGIL_ABSOLUTE_SESSION_SECONDS
        ):
            session.flush()
            request.vigil_session_expired = True  # type: ignore[attr-defined]
        return self.get_response(request)


class TwoFactorRequiredMiddleware:
    """A signed-in user whose role needs two-factor but whose session is not verified
    (e.g. the role changed mid-session) is signed out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and getattr(user, "requires_two_factor", False)
            and not user.is_verified()  # type: ignore[attr-defined]
        ):
            logout(request)
            messages.warning(
                request, _("Your role requires two-factor sign-in. Please sign in again.")
            )
            return redirect(settings.LOGIN_URL)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.user.is_authenticated if hasattr(request, "user") else False:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session has ended would get the sign-in page swapped into a
    table or badge; send the whole page to sign-in instead (HX-Redirect)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.headers.get("HX-Request")
            and response.status_code in (301, 302)
            and response.get("Location", "").startswith(resolve_url(settings.LOGIN_URL))
        ):
            redirect_response = HttpResponse("")
            redirect_response["HX-Redirect"] = response["Location"]
            return redirect_response
        return response
