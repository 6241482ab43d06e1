from django.urls import path

from vigil.access import views

URL_PREFIX = "requests/"
app_name = "access"
urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.request_new, name="new"),
    path("<int:pk>/", views.request_detail, name="detail"),
    path("<int:pk>/approve/", views.request_approve, name="approve"),
    path("<int:pk>/refuse/", views.request_refuse, name="refuse"),
    path("<int:pk>/withdraw/", views.request_withdraw, name="withdraw"),
    path("<int:pk>/export/", views.export_start, name="export"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant_revoke"),
    path("exports/<int:pk>/", views.job_progress, name="job"),
    path("exports/<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("exports/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("packages/<int:pk>/link/", views.package_link, name="package_link"),
    path("packages/<int:pk>/verify/", views.package_verify, name="package_verify"),
    path("packages/<int:pk>/media/<str:name>", views.package_media, name="package_media"),
    path("download/<str:token>/", views.download, name="download"),
    path("verify/", views.verify_page, name="verify"),
    path("delegations/", views.delegations, name="delegations"),
    path("delegations/<int:pk>/end/", views.delegation_end, name="delegation_end"),
]
