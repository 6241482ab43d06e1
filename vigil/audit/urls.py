from django.urls import path

from vigil.audit import views

URL_PREFIX = "audit/"
app_name = "audit"
urlpatterns = [
    path("", views.search, name="search"),
    path("verify/", views.verify, name="verify"),
]
