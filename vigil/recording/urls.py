from django.urls import path

from vigil.recording import views

URL_PREFIX = "recording/"
app_name = "recording"
urlpatterns = [path("status/", views.status, name="status")]
