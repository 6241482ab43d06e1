from django.contrib import admin

from vigil.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the chain is append-only."""

    list_display = ("seq", "created_at", "actor_username", "action", "object_repr", "outcome")
    list_filter = ("outcome", "action")
    search_fields = ("actor_username", "object_repr", "action")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
