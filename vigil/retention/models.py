"""Retention: the floor and ceiling policy, evidence holds, per-volume sweep state, the
deletion ledger, per camera-day coverage and the signed daily coverage reports.

Art. 5 of the school's regulation: footage is kept at least 20 days (the floor). Art. 4.3:
footage may be evidence; a hold keeps it beyond any floor or ceiling until released.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SitePolicy(models.Model):
    """The site's retention policy (one row). Empty values inherit the configuration."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    floor_days = models.PositiveIntegerField(_("retention floor (days)"), null=True, blank=True)
    ceiling_days = models.PositiveIntegerField(_("retention ceiling (days)"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = _("site retention policy")

    def __str__(self) -> str:
        return f"floor={self.floor_days} ceiling={self.ceiling_days}"


class CameraPolicy(models.Model):
    """A camera's own floor (only above the site's) and ceiling."""

    camera = models.OneToOneField(
        "school.Camera",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="retention_policy",
    )
    floor_days = models.PositiveIntegerField(_("retention floor (days)"), null=True, blank=True)
    ceiling_days = models.PositiveIntegerField(_("retention ceiling (days)"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = _("camera retention policy")

    def __str__(self) -> str:
        return f"{self.camera_id}: floor={self.floor_days} ceiling={self.ceiling_days}"


class HoldQuerySet(models.QuerySet["Hold"]):
    def active(self) -> HoldQuerySet:
        return self.filter(released_at__isnull=True)


class Hold(models.Model):
    """An evidence hold (giữ bằng chứng, Art. 4.3): footage of these cameras in [start, end)
    survives the retention sweep and disk pressure until the hold is released."""

    cameras = models.ManyToManyField("school.Camera", related_name="holds")
    start = models.DateTimeField(_("footage from"))
    end = models.DateTimeField(_("footage until"))
    reason = models.TextField(_("reason"))
    # What asked for it, e.g. "request:42" (a footage request), empty when placed by hand.
    source = models.CharField(_("source"), max_length=100, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    placed_by_name = models.CharField(max_length=150)
    placed_at = models.DateTimeField(_("placed at"))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    released_by_name = models.CharField(max_length=150, blank=True)
    release_reason = models.TextField(_("reason for release"), blank=True)

    objects = HoldQuerySet.as_manager()

    class Meta:
        verbose_name = _("evidence hold")
        verbose_name_plural = _("evidence holds")
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["released_at", "start"], name="hold_active_start")]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="hold_range")
        ]

    def __str__(self) -> str:
        return f"hold #{self.pk} {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class VolumeState(models.Model):
    """What the retention sweep knows about a volume between sweeps."""

    volume = models.OneToOneField(
        "school.StorageVolume",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="retention_state",
    )
    # Set when only floor or held footage is left and free space ran out: the recorder
    # asks ``recording_allowed(volume)`` and pauses writes (docs/decisions/0010).
    recording_paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=300, blank=True)
    # The retention clock's anchor: a reference time and the newest segment id known then.
    # Ages are measured against a reference that advances no faster than footage is
    # recorded (see eviction.reference_time).
    anchor_reference = models.DateTimeField(null=True, blank=True)
    anchor_segment_id = models.BigIntegerField(null=True, blank=True)
    # Bytes of footage catalogued on the volume, counted up to a segment id; kept current
    # incrementally and recounted in full now and then.
    used_bytes = models.BigIntegerField(default=0)
    used_counted_id = models.BigIntegerField(default=0)
    used_recounted_at = models.DateTimeField(null=True, blank=True)
    last_sweep_at = models.DateTimeField(null=True, blank=True)
    last_sweep_json = models.TextField(default="{}")

    class Meta:
        verbose_name = _("volume retention state")

    def __str__(self) -> str:
        return f"{self.volume_id} paused={self.recording_paused}"

    @property
    def last_sweep(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.last_sweep_json or "{}")
        return value


class LedgerCursor(models.Model):
    """How far the deletion ledger has read the audit log (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    audit_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"ledger at audit #{self.audit_seq}"


class EarlyDeletion(models.Model):
    """Footage deleted while younger than its camera's floor, found in the audit log.

    Every deletion of footage goes through ``recording.storage.delete_segments`` and leaves
    a ``footage.delete`` audit entry; the ledger reads those entries and keeps the ones
    that broke the floor, whoever made them. The coverage report cites them.
    """

    camera = models.ForeignKey("school.Camera", on_delete=models.CASCADE, related_name="+")
    deleted_at = models.DateTimeField()
    footage_start = models.DateTimeField()
    footage_end = models.DateTimeField()
    floor_days = models.PositiveIntegerField()
    reason = models.CharField(max_length=64)
    actor = models.CharField(max_length=150)
    audit_seq = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["camera", "deleted_at"], name="early_del_camera")]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.footage_start}–{self.footage_end} ({self.reason})"


class CoverageDay(models.Model):
    """What was recorded for one camera on one local day, and whether the floor held.

    Computed from the catalog (segments and gaps) and the deletion ledger; recomputable.
    ``recorded_seconds`` never decreases when recomputed after old footage was deleted by
    retention: it says what was recorded, ``available_seconds`` what is still kept.
    """

    camera = models.ForeignKey("school.Camera", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    expected_seconds = models.FloatField(default=0)
    recorded_seconds = models.FloatField(default=0)
    available_seconds = models.FloatField(default=0)
    segments = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    # {"cause": seconds} from recording.Gap, clipped to the day
    gap_causes_json = models.TextField(default="{}")
    unexplained_seconds = models.FloatField(default=0)
    oldest_footage = models.DateTimeField(null=True, blank=True)
    floor_days = models.PositiveIntegerField(default=0)
    floor_met = models.BooleanField(default=True)
    early_deletions = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("coverage day")
        constraints = [
            models.UniqueConstraint(fields=["camera", "day"], name="coverage_camera_day")
        ]
        indexes = [models.Index(fields=["day"], name="coverage_day")]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.day}"

    @property
    def gap_causes(self) -> dict[str, float]:
        value: dict[str, float] = json.loads(self.gap_causes_json or "{}")
        return value


class CoverageReport(models.Model):
    """A signed daily coverage report, stored byte for byte as signed."""

    day = models.DateField(unique=True)
    # Canonical JSON text of the report; the digest is SHA-256 of its UTF-8 bytes.
    payload = models.TextField()
    digest = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)  # base64 Ed25519 signature
    public_key = models.CharField(max_length=100)  # base64 raw Ed25519 public key
    key_fingerprint = models.CharField(max_length=100)
    audit_seq = models.BigIntegerField()
    audit_head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    signed_by = models.CharField(max_length=150)

    class Meta:
        verbose_name = _("signed coverage report")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"coverage report {self.day}"
