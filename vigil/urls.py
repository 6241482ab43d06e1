from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from vigil.api import api

urlpatterns = [
    path("", include("vigil.core.urls")),
    path("accounts/", include("vigil.accounts.urls")),
    path("site/", include("vigil.school.urls")),
    path("audit/", include("vigil.audit.urls")),
    path("live/", include("vigil.live.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/", api.urls),
    path("django-admin/", admin.site.urls),
]
