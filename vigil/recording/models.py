"""The recording catalog: segments, gaps, deletion intents and per-camera health.

Lifecycle invariants are in docs/design/recording.md: a segment row exists only for a
file that was fully written and fsynced; a file is unlinked only after a deletion intent
for it has committed.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    camera = models.ForeignKey("school.Camera", on_delete=models.PROTECT, related_name="segments")
    volume = models.ForeignKey(
        "school.StorageVolume", on_delete=models.PROTECT, related_name="segments"
    )
    # Relative to the volume's path: <camera>/<YYYY-MM-DD>/<HHMMSS>-<seq>.mp4 (UTC)
    path = models.CharField(max_length=300)
    start = models.DateTimeField()
    end = models.DateTimeField()
    duration = models.FloatField(help_text="seconds, from the stream's timestamps")
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    codec = models.CharField(max_length=16)
    codec_string = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    fps = models.FloatField(default=0)
    has_audio = models.BooleanField(default=False)
    init_size = models.PositiveIntegerField(default=0)
    recovered = models.BooleanField(
        default=False, help_text="Adopted after a crash from a partly written file."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.UniqueConstraint(fields=["volume", "path"], name="segment_file_unique"),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="segment_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["camera", "start"], name="segment_camera_start"),
            models.Index(fields=["volume", "start"], name="segment_volume_start"),
        ]

    def __str__(self) -> str:
        return f"{self.camera_id}:{self.path}"


class Gap(models.Model):
    """A stretch with no recording for a camera, with why."""

    class Cause(models.TextChoices):
        CAMERA_UNREACHABLE = "camera_unreachable", _("Camera unreachable")
        STREAM_STALLED = "stream_stalled", _("Stream stalled")
        RECORDER_STOPPED = "recorder_stopped", _("Recorder stopped")
        AUTHENTICATION = "authentication_failed", _("Camera refused the login")
        UNSUPPORTED = "unsupported_stream", _("Unsupported stream")
        STORAGE = "storage_unavailable", _("Storage unavailable")
        NOT_IN_SERVICE = "not_in_service", _("Camera not in service")

    camera = models.ForeignKey("school.Camera", on_delete=models.PROTECT, related_name="gaps")
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True, help_text="Empty while the gap is open.")
    cause = models.CharField(max_length=32, choices=Cause.choices)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("gap")
        verbose_name_plural = _("gaps")
        indexes = [models.Index(fields=["camera", "start"], name="gap_camera_start")]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.cause} {self.start}–{self.end or '…'}"


class DeletionIntent(models.Model):
    """A file about to be unlinked (Moonfire's 'garbage'): committed before the unlink,
    removed after it, finished at start-up if a crash came in between."""

    volume = models.ForeignKey("school.StorageVolume", on_delete=models.PROTECT)
    path = models.CharField(max_length=300)
    segment_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["volume", "path"], name="deletion_intent_unique")
        ]

    def __str__(self) -> str:
        return f"delete {self.path} ({self.reason})"


class CameraHealth(models.Model):
    camera = models.OneToOneField(
        "school.Camera", on_delete=models.CASCADE, related_name="health", primary_key=True
    )
    online = models.BooleanField(default=False)
    fps = models.FloatField(default=0)
    bitrate_bps = models.FloatField(default=0)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    reconnects_last_hour = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    codec = models.CharField(max_length=16, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    node = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("camera health")

    def __str__(self) -> str:
        return f"{self.camera_id} {'online' if self.online else 'offline'}"


class RecorderNode(models.Model):
    """A running ``vigil record`` process, with its heartbeat."""

    recorder = models.OneToOneField(
        "school.Recorder", on_delete=models.CASCADE, related_name="node"
    )
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    version = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"{self.recorder_id} on {self.hostname} (pid {self.pid})"
