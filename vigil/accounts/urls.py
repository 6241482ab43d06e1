from django.urls import path

from vigil.accounts import views

URL_PREFIX = "accounts/"
app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.verify_view, name="verify"),
    path("login/enrol/", views.enrol_view, name="enrol"),
    path("logout/", views.logout_view, name="logout"),
    path("password/", views.password_change_view, name="password_change"),
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_edit, name="user_new"),
    path("users/<str:username>/", views.user_edit, name="user_edit"),
    path("users/<str:username>/reset/<str:what>/", views.user_reset, name="user_reset"),
]
