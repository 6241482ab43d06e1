from django.urls import path

from vigil.live import views

URL_PREFIX = "live/"
app_name = "live"
urlpatterns = [
    path("", views.wall, name="wall"),
    path("playback/", views.playback_page, name="playback"),
    path("media/<str:token>/live", views.live_media, name="live_media"),
    path("media/<str:token>/index", views.playback_index, name="playback_index"),
    path("media/<str:token>/seg/<int:segment_id>", views.playback_segment, name="segment"),
]
