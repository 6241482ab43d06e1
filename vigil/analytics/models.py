"""Motion events, per-camera analysis settings and status, image-quality samples and days."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class CameraAnalysis(models.Model):
    """What runs on a camera and where motion counts (masks, zones)."""

    camera = models.OneToOneField(
        "school.Camera", on_delete=models.CASCADE, related_name="analysis_settings"
    )
    motion_enabled = models.BooleanField(_("motion detection"), default=True)
    tamper_enabled = models.BooleanField(_("tamper detection"), default=True)
    # Motion threshold on the contrast-stretched 0-255 scale (lower = more sensitive).
    threshold = models.PositiveSmallIntegerField(_("motion threshold"), default=30)
    # Normalised polygons: [[[x, y], ...], ...] where motion is ignored.
    masks_json = models.TextField(default="[]")
    # {"name": [[x, y], ...]}: motion events list the zones they touched.
    zones_json = models.TextField(default="{}")
    # Set when someone confirms the camera was re-aimed on purpose: the analyser
    # relearns its reference view.
    view_accepted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("camera analysis settings")
        verbose_name_plural = _("camera analysis settings")

    def __str__(self) -> str:
        return f"analysis of {self.camera_id}"

    @property
    def masks(self) -> list[list[list[float]]]:
        data: list[list[list[float]]] = json.loads(self.masks_json or "[]")
        return data

    @property
    def zones(self) -> dict[str, list[list[float]]]:
        data: dict[str, list[list[float]]] = json.loads(self.zones_json or "{}")
        return data


class AnalysisStatus(models.Model):
    """What ``vigil analyze`` reports about each camera every few seconds."""

    camera = models.OneToOneField(
        "school.Camera", on_delete=models.CASCADE, related_name="analysis_status"
    )
    online = models.BooleanField(default=False)
    fps = models.FloatField(default=0.0)  # analysed frames per second
    lag_ms = models.FloatField(default=0.0)  # arrival to analysed, recent mean
    dropped = models.PositiveIntegerField(default=0)  # frames skipped to catch up
    reference_ready = models.BooleanField(default=False)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    node = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"analysis status of {self.camera_id}"


class MotionEvent(models.Model):
    """Someone or something moved: start, end, peak and a thumbnail of the peak frame."""

    camera = models.ForeignKey(
        "school.Camera", on_delete=models.CASCADE, related_name="motion_events"
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"), null=True, blank=True)  # None while ongoing
    peak_at = models.DateTimeField(_("peak"))
    peak_score = models.FloatField(default=0.0)  # changed share of the picture
    zones = models.CharField(_("zones"), max_length=300, blank=True)  # comma-separated
    box_json = models.CharField(max_length=120, default="[]")  # normalised x0, y0, x1, y1
    motion_frames = models.PositiveIntegerField(default=0)
    # Thumbnail file: $VIGIL_DATA_DIR/analytics/thumbs/<UTC day of start>/<id>.jpg
    has_thumbnail = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("motion event")
        verbose_name_plural = _("motion events")
        ordering = ["-start"]
        indexes = [
            models.Index(fields=["camera", "start"], name="motion_camera_start"),
            models.Index(fields=["start"], name="motion_start"),
        ]

    def __str__(self) -> str:
        return f"motion {self.camera_id} {self.start:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self) -> float:
        return 0.0 if self.end is None else (self.end - self.start).total_seconds()

    @property
    def zone_list(self) -> list[str]:
        return [z for z in self.zones.split(",") if z]


class QualitySample(models.Model):
    """One image-quality measurement of a camera (Art. 2.1, 8.2)."""

    camera = models.ForeignKey(
        "school.Camera", on_delete=models.CASCADE, related_name="quality_samples"
    )
    taken_at = models.DateTimeField()
    day = models.DateField()  # local (site time zone) date
    score = models.FloatField()
    passed = models.BooleanField()
    sharpness = models.FloatField()
    brightness = models.FloatField()
    contrast = models.FloatField()
    noise = models.FloatField()
    dark_clip = models.FloatField()
    bright_clip = models.FloatField()
    width = models.PositiveIntegerField()  # analysed (sub-)stream
    height = models.PositiveIntegerField()
    # The recorded main stream as the recorder measured it, against the camera's spec.
    main_width = models.PositiveIntegerField(null=True, blank=True)
    main_height = models.PositiveIntegerField(null=True, blank=True)
    main_bitrate_kbps = models.FloatField(null=True, blank=True)
    # [{"code", "message", "value", "limit"}]
    issues_json = models.TextField(default="[]")

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["camera", "day"], name="quality_camera_day")]

    def __str__(self) -> str:
        return f"quality {self.camera_id} {self.taken_at:%Y-%m-%d %H:%M} {self.score}"

    @property
    def issues(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.issues_json or "[]")
        return data


class QualityDay(models.Model):
    """A camera-day's quality verdict: the score on the camera's page, and the
    maintenance list when it fails."""

    camera = models.ForeignKey(
        "school.Camera", on_delete=models.CASCADE, related_name="quality_days"
    )
    day = models.DateField(_("day"))
    samples = models.PositiveIntegerField(default=0)
    score = models.FloatField(_("score"), default=0.0)  # median sample score
    worst = models.FloatField(default=0.0)  # 10th percentile
    pass_rate = models.FloatField(default=0.0)
    passed = models.BooleanField(_("passed"), default=False)
    # [{"code", "message", "share"}]
    issues_json = models.TextField(default="[]")
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("image quality of a day")
        verbose_name_plural = _("image quality by day")
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["camera", "day"], name="quality_day_unique")]

    def __str__(self) -> str:
        return f"quality {self.camera_id} {self.day} {self.score}"

    @property
    def issues(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.issues_json or "[]")
        return data
