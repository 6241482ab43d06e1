from django.urls import path

from vigil.core import views

URL_PREFIX = ""
app_name = "core"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
]
