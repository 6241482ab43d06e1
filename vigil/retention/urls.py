from django.urls import path

from vigil.retention import views

URL_PREFIX = "retention/"
app_name = "retention"
urlpatterns = [
    path("storage/", views.storage_plan, name="storage"),
    path("policy/", views.policy_edit, name="policy"),
    path("cameras/<str:code>/policy/", views.camera_policy, name="camera_policy"),
    path("holds/", views.hold_list, name="hold_list"),
    path("holds/<int:pk>/release/", views.hold_release, name="hold_release"),
    path("coverage/", views.coverage_view, name="coverage"),
    path("coverage/export.<str:fmt>", views.coverage_export, name="coverage_export"),
    path("reports/verify/", views.report_verify, name="report_verify"),
    path("reports/<str:day>/", views.report_detail, name="report_detail"),
]
