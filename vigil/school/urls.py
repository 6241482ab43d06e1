from django.urls import path

from vigil.school import views

URL_PREFIX = "site/"
app_name = "school"
urlpatterns = [
    path("cameras/", views.camera_list, name="camera_list"),
    path("cameras/new/", views.camera_edit, name="camera_new"),
    path("cameras/<str:code>/", views.camera_detail, name="camera_detail"),
    path("cameras/<str:code>/edit/", views.camera_edit, name="camera_edit"),
    path("cameras/<str:code>/state/", views.camera_state, name="camera_state"),
    path("cameras/<str:code>/inspection/", views.camera_inspection, name="camera_inspection"),
    path("areas/", views.area_list, name="area_list"),
    path("areas/new/", views.area_edit, name="area_new"),
    path("areas/<str:code>/", views.area_edit, name="area_edit"),
    path("departments/", views.department_list, name="department_list"),
    path("departments/new/", views.department_edit, name="department_new"),
    path("departments/<str:code>/", views.department_edit, name="department_edit"),
    path("recorders/", views.recorder_list, name="recorder_list"),
    path("recorders/new/", views.recorder_edit, name="recorder_new"),
    path("recorders/<str:code>/", views.recorder_edit, name="recorder_edit"),
    path("inventory/", views.inventory_view, name="inventory"),
    path("inventory/export.<str:fmt>", views.inventory_export, name="inventory_export"),
]
