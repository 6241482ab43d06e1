"""Sign-in (password, then TOTP for the roles that need it), sign-out, and accounts."""

from __future__ import annotations

import base64
import time
from typing import Any

import segno
from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from vigil.accounts import services
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.audit.models import Outcome
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.core.middleware import AUTH_AT_KEY
from vigil.school.models import Department
from vigil.school.validation import ValidationFailed

PENDING_KEY = "vigil_pending_2fa"
PENDING_SECONDS = 300


class LoginForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput)


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=gettext_lazy("6-digit code"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": gettext_lazy("Enter the 6 digits from your app.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse(settings.LOGIN_REDIRECT_URL)


def _complete_login(
    request: HttpRequest, user: User, device: TOTPDevice | None, nxt: str
) -> HttpResponse:
    request.session.pop(PENDING_KEY, None)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if device is not None:
        otp_login(request, device)
    request.session[AUTH_AT_KEY] = time.time()
    services.record_sign_in(
        Actor.from_request(request), user, Outcome.SUCCESS, two_factor=device is not None
    )
    if user.must_change_password:
        messages.info(request, _("Please choose a new password."))
        return redirect("accounts:password_change")
    return HttpResponseRedirect(nxt)


def locked_out(
    request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    minutes = settings.VIGIL.security.lockout_minutes
    username = (credentials or {}).get("username", "")
    services.record_sign_in(
        Actor.from_request(request), None, Outcome.DENIED, username=username, locked=True
    )
    return render(request, "accounts/locked.html", {"minutes": minutes}, status=429)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    nxt = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return HttpResponseRedirect(nxt)
    if getattr(request, "vigil_session_expired", False):
        messages.info(request, _("Your session has ended. Please sign in again."))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return locked_out(request, {"username": username})
        if user is None:
            services.record_sign_in(
                Actor.from_request(request), None, Outcome.FAILURE, username=username
            )
            form.add_error(None, _("The username or password is not correct."))
        elif user.requires_two_factor:
            request.session.cycle_key()
            request.session[PENDING_KEY] = {"uid": user.pk, "at": time.time(), "next": nxt}
            if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                return redirect("accounts:verify")
            return redirect("accounts:enrol")
        else:
            return _complete_login(request, user, None, nxt)
    return render(request, "accounts/login.html", {"form": form, "next": nxt})


def _pending_user(request: HttpRequest) -> tuple[User | None, str]:
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, ""
    user = User.objects.filter(pk=pending.get("uid"), is_active=True).first()
    return user, str(pending.get("next") or reverse(settings.LOGIN_REDIRECT_URL))


def _code_failed(request: HttpRequest, user: User) -> None:
    credentials = {"username": user.username}
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    services.record_sign_in(Actor.from_request(request), user, Outcome.FAILURE, step="totp")


@csrf_protect
@never_cache
def verify_view(request: HttpRequest) -> HttpResponse:
    user, nxt = _pending_user(request)
    if user is None:
        messages.info(request, _("Please sign in again."))
        return redirect("accounts:login")
    if not AxesProxyHandler.is_allowed(request, {"username": user.username}):
        return locked_out(request, {"username": user.username})
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip()
        for device in TOTPDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(code):
                return _complete_login(request, user, device, nxt)
        _code_failed(request, user)
        if not AxesProxyHandler.is_allowed(request, {"username": user.username}):
            return locked_out(request, {"username": user.username})
        form.add_error("code", _("The code is not correct or was already used."))
    return render(request, "accounts/verify.html", {"form": form, "pending_user": user})


@csrf_protect
@never_cache
def enrol_view(request: HttpRequest) -> HttpResponse:
    user, nxt = _pending_user(request)
    if user is None:
        messages.info(request, _("Please sign in again."))
        return redirect("accounts:login")
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect("accounts:verify")
    device = TOTPDevice.objects.filter(
        user=user, confirmed=False
    ).first() or services.new_totp_device(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            services.confirm_totp_device(Actor.from_request(request), device)
            return _complete_login(request, user, device, nxt)
        _code_failed(request, user)
        form.add_error("code", _("The code is not correct. Check the time on your phone."))
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4)
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return render(
        request,
        "accounts/enrol.html",
        {"form": form, "qr_svg": qr, "secret": secret, "pending_user": user},
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        from vigil.audit.services import record

        record(Actor.from_request(request), "auth.logout", request.user)
    logout(request)
    return redirect("accounts:login")


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(
        label=gettext_lazy("Current password"), widget=forms.PasswordInput
    )
    new_password = forms.CharField(label=gettext_lazy("New password"), widget=forms.PasswordInput)
    confirm = forms.CharField(label=gettext_lazy("New password again"), widget=forms.PasswordInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password") and data.get("new_password") != data.get("confirm"):
            self.add_error("confirm", _("The two passwords differ."))
        return data


@sensitive_post_parameters()
@login_required
def password_change_view(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.change_own_password(
                Actor.from_request(request),
                request.user,  # type: ignore[arg-type]
                form.cleaned_data["old_password"],
                form.cleaned_data["new_password"],
            )
        except ValidationFailed as exc:
            for err in exc.errors:
                form.add_error(err.field if err.field in form.fields else None, err.reason)
        else:
            update_session_auth_hash(request, request.user)  # type: ignore[arg-type]
            messages.success(request, _("Your password was changed."))
            return redirect("core:dashboard")
    return render(request, "accounts/password_change.html", {"form": form})


# ------------------------------------------------------------------ user management


class UserForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    full_name = forms.CharField(label=gettext_lazy("Full name"), max_length=200, required=False)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)
    department = forms.ChoiceField(label=gettext_lazy("Department"), required=False)
    email = forms.EmailField(label=gettext_lazy("Email"), required=False)
    organisation = forms.CharField(label=gettext_lazy("Organisation"), required=False)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["department"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—")] + [
            (d.code, d.name) for d in Department.objects.order_by("name")
        ]
        if editing:
            self.fields["username"].disabled = True


@login_required
def user_list(request: HttpRequest) -> HttpResponse:
    require(Actor.from_request(request), Action.USER_MANAGE)
    users = User.objects.select_related("department").order_by("role", "username")
    return render(request, "accounts/user_list.html", {"users": users})


@login_required
def user_edit(request: HttpRequest, username: str | None = None) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.USER_MANAGE)
    target = get_object_or_404(User, username=username) if username else None
    initial = {}
    if target is not None:
        initial = {
            "username": target.username,
            "full_name": target.full_name,
            "role": target.role,
            "department": target.department.code if target.department else "",
            "email": target.email,
            "organisation": target.organisation,
            "is_active": target.is_active,
        }
    form = UserForm(request.POST or None, initial=initial, editing=target is not None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            if target is None:
                user, password = services.create_user(
                    actor,
                    username=d["username"],
                    role=d["role"],
                    full_name=d["full_name"],
                    department=d["department"] or None,
                    email=d["email"],
                    organisation=d["organisation"],
                )
                user.must_change_password = True
                user.save(update_fields=["must_change_password"])
                messages.success(
                    request,
                    _("Account %(user)s created. Initial password: %(pw)s (shown once).")
                    % {"user": user.username, "pw": password},
                )
            else:
                services.update_user(
                    actor,
                    target,
                    role=d["role"],
                    department=d["department"] or None,
                    full_name=d["full_name"],
                    email=d["email"],
                    is_active=d["is_active"],
                )
                messages.success(request, _("Account saved."))
            return redirect("accounts:user_list")
        except ValidationFailed as exc:
            for err in exc.errors:
                form.add_error(err.field if err.field in form.fields else None, err.reason)
    return render(request, "accounts/user_form.html", {"form": form, "target": target})


@require_POST
@login_required
def user_reset(request: HttpRequest, username: str, what: str) -> HttpResponse:
    actor = Actor.from_request(request)
    target = get_object_or_404(User, username=username)
    if what == "password":
        password = services.reset_password(actor, target)
        messages.success(
            request,
            _("New password for %(user)s: %(pw)s (shown once).")
            % {"user": target.username, "pw": password},
        )
    elif what == "two-factor":
        services.reset_two_factor(actor, target)
        messages.success(
            request, _("Two-factor device removed; the user enrols again at next sign-in.")
        )
    return redirect("accounts:user_list")
