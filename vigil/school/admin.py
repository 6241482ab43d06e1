from django.contrib import admin

from vigil.school.models import (
    Area,
    Camera,
    Department,
    Inspection,
    Recorder,
    School,
    StorageVolume,
    Supplier,
)


class VolumeInline(admin.TabularInline):
    model = StorageVolume
    extra = 0


@admin.register(Recorder)
class RecorderAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "location")
    inlines = [VolumeInline]


class InspectionInline(admin.TabularInline):
    model = Inspection
    extra = 0


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "area", "recorder", "state", "codec")
    list_filter = ("state", "recorder", "area__department")
    search_fields = ("code", "name")
    exclude = ("credential",)  # credentials are never shown back
    inlines = [InspectionInline]


admin.site.register(School)
admin.site.register(Department)
admin.site.register(Area)
admin.site.register(Supplier)
