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
    acknowledgement_note = models.TextField(blank=True)
    # When the detector last saw the condition end (a tamper alert stays open until the
    # desk resolves it: someone must look at what happened even if the picture is back).
    condition_ended_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Snapshots (JPEG, content-addressed files under $VIGIL_DATA_DIR/alerts/snapshots/,
    # see vigil.alerts.snapshots): the last good view before, and the picture when raised.
    snapshot_before = models.CharField(max_length=64, blank=True)
    snapshot_after = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["state", "opened_at"], name="alert_state_opened"),
            models.Index(fields=["camera", "opened_at"], name="alert_camera_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.cause} ({self.severity}) {self.title}"

    @property
    def is_tamper(self) -> bool:
        return self.cause.startswith("tamper")

    @property
    def is_open(self) -> bool:
        return self.state != self.State.RESOLVED

    @property
    def audience_roles(self) -> list[str]:
        return [r for r in self.audience.split(",") if r]


class Notification(models.Model):
    """One delivery of an alert event (e-mail to one person, or one webhook call).

    Rows are written in the transaction of the event (an outbox), so an event is never
    lost when a mail server or webhook receiver is down; ``vigil alerts dispatch``
    delivers them and retries with backoff.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Delivery failed")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20)  # raised, escalated, acknowledged, resolved
    level = models.PositiveSmallIntegerField(default=0)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload_json = models.TextField(default="{}")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notif_due")]

    def __str__(self) -> str:
        return f"{self.event} {self.channel} {self.target} ({self.status})"
