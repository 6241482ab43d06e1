"""Alerts about cameras, recorders and storage."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    INFO = "info", _("Information")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


class Alert(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    # What the alert is about: a camera, a recorder, or the site (both empty).
    camera = models.ForeignKey(
        "school.Camera", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    recorder = models.ForeignKey(
        "school.Recorder", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    # e.g. camera_offline, tamper_covered, storage_floor_at_risk
    cause = models.CharField(_("cause"), max_length=64)
    # De-duplication: "<camera>:<recorder>:<cause>" while unresolved, empty (NULL) after;
    # unique, so at most one unresolved alert per subject and cause, on any database.
    open_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    state = models.CharField(_("state"), max_length=14, choices=State.choices, default=State.OPEN)
    title = models.CharField(_("title"), max_length=300)
    message = models.TextField(_("message"), blank=True)
    # Roles told about it, comma-separated (e.g. "security_head,it_staff,board").
    audience = models.CharField(max_length=300, blank=True)
    # The department answerable for the camera's area (Art. 6), when there is a camera.
    department = models.ForeignKey(
        "school.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail_json = models.TextField(default="{}")
    opened_at = models.DateTimeField(_("opened"))
    last_seen_at = models.DateTimeField(_("last seen"))
    occurrences = models.PositiveIntegerField(default=1)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["state", "opened_at"], name="alert_state_opened")]

    def __str__(self) -> str:
        return f"{self.cause} ({self.severity}) {self.title}"
