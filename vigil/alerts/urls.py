from django.urls import path

from vigil.alerts import views

URL_PREFIX = "alerts/"
app_name = "alerts"
urlpatterns = [
    path("", views.alert_list, name="list"),
    path("badge/", views.badge, name="badge"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:pk>/resolve/", views.resolve, name="resolve"),
    path("snapshot/<str:token>/", views.snapshot, name="snapshot"),
]
