from django.urls import path

from vigil.analytics import views

URL_PREFIX = "analytics/"
app_name = "analytics"
urlpatterns = [
    path("motion/", views.motion, name="motion"),
    path("thumb/<str:token>/", views.thumbnail, name="thumbnail"),
    path("quality/", views.quality, name="quality"),
    path("camera/<str:code>/settings/", views.camera_settings, name="settings"),
    path("camera/<str:code>/accept-view/", views.accept_view, name="accept_view"),
    path("camera/<str:code>/view.jpg", views.camera_view, name="view"),
]
