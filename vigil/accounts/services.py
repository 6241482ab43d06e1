"""Use cases for people: accounts, roles, two-factor devices, sign-in events."""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.school.models import Department
from vigil.school.validation import FieldError, ValidationFailed

ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 16) -> str:
    """A random password: no default passwords anywhere (QCVN 135:2024)."""
    while True:
        value = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def _clean_user(data: dict[str, Any], *, creating: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    if creating:
        username = str(data.get("username") or "").strip()
        if not username:
            errors.append(FieldError("username", "is required"))
        elif User.objects.filter(username=username).exists():
            errors.append(FieldError("username", f"'{username}' is already taken"))
    role = data.get("role")
    if role not in Role.values:
        errors.append(FieldError("role", f"'{role}' is not a role"))
    dept = data.get("department")
    if dept and not Department.objects.filter(code=dept).exists():
        errors.append(FieldError("department", f"no department with code '{dept}'"))
    if role in (Role.DEPARTMENT_HEAD, Role.STAFF) and not dept:
        errors.append(FieldError("department", "is required for this role"))
    return errors


def create_user(
    actor: Actor,
    *,
    username: str,
    role: str,
    full_name: str = "",
    department: str | None = None,
    email: str = "",
    organisation: str = "",
    phone: str = "",
    password: str | None = None,
    audit_detail: dict[str, Any] | None = None,
) -> tuple[User, str]:
    """Create an account; returns it with its initial password (generated if not given)."""
    require(actor, Action.USER_MANAGE)
    data = {"username": username, "role": role, "department": department}
    errors = _clean_user(data, creating=True)
    password = password or generate_password()
    user = User(username=username.strip(), role=role, full_name=full_name, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors.append(FieldError("password", " ".join(exc.messages)))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        user.organisation = organisation
        user.phone = phone
        user.department = Department.objects.get(code=department) if department else None
        user.set_password(password)
        user.save()
        record(
            actor,
            "user.create",
            user,
            detail={"role": role, "department": department or "", **(audit_detail or {})},
        )
    return user, password


def update_user(
    actor: Actor,
    user: User,
    *,
    role: str,
    department: str | None,
    full_name: str,
    email: str,
    is_active: bool,
) -> User:
    require(actor, Action.USER_MANAGE)
    errors = _clean_user({"role": role, "department": department}, creating=False)
    if actor.user is not None and actor.user.pk == user.pk and not is_active:
        errors.append(FieldError("is_active", "you cannot deactivate your own account"))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        before = {"role": user.role, "active": user.is_active}
        user.role = role
        user.department = Department.objects.get(code=department) if department else None
        user.full_name = full_name
        user.email = email
        user.is_active = is_active
        user.save()
        record(
            actor,
            "user.update",
            user,
            detail={"before": before, "after": {"role": role, "active": is_active}},
        )
    return user


def reset_password(actor: Actor, user: User) -> str:
    require(actor, Action.USER_MANAGE)
    password = generate_password()
    with transaction.atomic():
        user.set_password(password)
        user.must_change_password = True
        user.save(update_fields=["password", "must_change_password"])
        record(actor, "user.password_reset", user)
    return password


def reset_two_factor(actor: Actor, user: User) -> None:
    """Remove a user's TOTP devices; they enrol again at next sign-in."""
    require(actor, Action.USER_MANAGE)
    with transaction.atomic():
        count, _ = TOTPDevice.objects.filter(user=user).delete()
        record(actor, "user.two_factor_reset", user, detail={"devices": count})


def change_own_password(actor: Actor, user: User, old: str, new: str) -> None:
    errors = []
    if not user.check_password(old):
        errors.append(FieldError("old_password", "is not correct"))
    try:
        validate_password(new, user)
    except ValidationError as exc:
        errors.append(FieldError("new_password", " ".join(exc.messages)))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        user.set_password(new)
        user.must_change_password = False
        user.save(update_fields=["password", "must_change_password"])
        record(actor, "auth.password_change", user)


def new_totp_device(user: User) -> TOTPDevice:
    """An unconfirmed device for enrolment (replacing any earlier unconfirmed one)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Vigil", confirmed=False)


def confirm_totp_device(actor: Actor, device: TOTPDevice) -> None:
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record(actor, "auth.two_factor_enrolled", device.user)


def record_sign_in(actor: Actor, user: User | None, outcome: str, **detail: Any) -> None:
    with transaction.atomic():
        record(actor, "auth.login", user, outcome=outcome, detail=detail)
