"""The JSON API (django-ninja, OpenAPI at /api/docs). Each app adds its router in
``vigil/<app>/api.py`` (``router`` and ``PREFIX``). Session authentication with CSRF;
every endpoint asks the permission service like the pages do."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.security import django_auth

from vigil.school.validation import ValidationFailed

api = NinjaAPI(
    title="Vigil API",
    version="1",
    urls_namespace="api",
    auth=django_auth,
    docs_decorator=login_required,
)


@api.exception_handler(PermissionDenied)
def _denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "forbidden"}, status=403)


@api.exception_handler(ValidationFailed)
def _invalid(request: HttpRequest, exc: ValidationFailed) -> HttpResponse:
    errors = [{"field": e.field, "reason": e.reason} for e in exc.errors]
    return api.create_response(request, {"detail": "invalid input", "errors": errors}, status=422)


def _register() -> None:
    for config in apps.get_app_configs():
        if not config.name.startswith("vigil."):
            continue
        try:
            module = import_module(f"{config.name}.api")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.api":
                raise
            continue
        api.add_router(f"/{module.PREFIX}", module.router)


_register()
