from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from vigil.accounts.models import User


@admin.register(User)
class VigilUserAdmin(UserAdmin):
    list_display = ("username", "full_name", "role", "department", "is_active")
    list_filter = ("role", "is_active", "department")
    fieldsets = (
        *UserAdmin.fieldsets,
        (
            "Vigil",
            {
                "fields": (
                    "role",
                    "full_name",
                    "department",
                    "organisation",
                    "phone",
                    "must_change_password",
                )
            },
        ),
    )
