"""URL root. Each Vigil app with a ``urls.py`` declaring ``URL_PREFIX`` is mounted there."""

from importlib import import_module

from django.apps import apps
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.views.i18n import JavaScriptCatalog

from vigil.api import api


def _app_urls() -> list[URLPattern | URLResolver]:
    found: list[URLPattern | URLResolver] = []
    for config in apps.get_app_configs():
        if not config.name.startswith("vigil."):
            continue
        try:
            module = import_module(f"{config.name}.urls")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.urls":
                raise
            continue
        found.append(path(module.URL_PREFIX, include(module.__name__)))
    return found


urlpatterns = [
    *_app_urls(),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/", api.urls),
    path("django-admin/", admin.site.urls),
]
