"""Footage requests and what follows them: decisions, export jobs, evidence packages,
their chain of custody and download links.

A request is filed (Art. 3, 4.2, 4.3; Law 91/2025 Art. 24), decided by the board (one
or two approvals, Art. 4.1), and an approval creates access grants
(``vigil.authz.models.Grant``, ``source = "request:<id>"``). IT extracts the footage
through an export job bound to its grant (Art. 5); the job writes a signed evidence
package under ``$VIGIL_DATA_DIR/exports/``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class RequestKind(models.TextChoices):
    INTERNAL_REVIEW = "internal_review", _("Internal professional review")
    OUTSIDE_PARTY = "outside_party", _("Outside unit or researcher")
    COMPLAINT = "complaint", _("Evidence for a complaint")
    INVESTIGATION = "investigation", _("Investigation of a violation")
    GUARDIAN = "guardian", _("Parent's request for their child's footage")


# The article (or law) each kind rests on, shown beside it.
KIND_BASIS = {
    RequestKind.INTERNAL_REVIEW: _("Art. 4.1"),
    RequestKind.OUTSIDE_PARTY: _("Art. 4.2"),
    RequestKind.COMPLAINT: _("Art. 3"),
    RequestKind.INVESTIGATION: _("Art. 4.3"),
    RequestKind.GUARDIAN: _("Law 91/2025 Art. 24; Decree 356/2025 Art. 5"),
}


class RequestForm(models.TextChoices):
    VIEW = "view", _("View on site")
    COPY = "copy", _("Copy")


class RequestStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Awaiting decision")
    PARTLY_APPROVED = "partly_approved", _("Awaiting a second approval")
    APPROVED = "approved", _("Approved")
    REFUSED = "refused", _("Refused")
    WITHDRAWN = "withdrawn", _("Withdrawn")


OPEN_STATUSES = (RequestStatus.SUBMITTED, RequestStatus.PARTLY_APPROVED)


class FootageRequest(models.Model):
    number = models.CharField(_("number"), max_length=20, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=RequestKind.choices)
    form = models.CharField(_("form"), max_length=8, choices=RequestForm.choices)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requester"),
        on_delete=models.PROTECT,
        related_name="footage_requests",
    )
    # Someone at the school who filed a paper request on the requester's behalf.
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("filed by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    department = models.ForeignKey(
        "school.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    organisation = models.CharField(_("organisation"), max_length=200, blank=True)
    subject = models.CharField(
        _("subject"),
        max_length=300,
        blank=True,
        help_text=_("The child (name, class), the incident or the complaint concerned."),
    )
    purpose = models.TextField(_("purpose"))
    recipient = models.CharField(
        _("recipient"), max_length=300, help_text=_("Who receives the footage.")
    )
    cameras = models.ManyToManyField("school.Camera", verbose_name=_("cameras"))
    footage_start = models.DateTimeField(_("footage from"))
    footage_end = models.DateTimeField(_("footage until"))
    status = models.CharField(
        _("status"), max_length=20, choices=RequestStatus.choices, default=RequestStatus.SUBMITTED
    )
    approvals_needed = models.PositiveSmallIntegerField(_("approvals needed"), default=1)
    submitted_at = models.DateTimeField(_("submitted at"), default=timezone.now)
    # Deadlines the law sets for a parent's request (None for other kinds).
    reply_due = models.DateTimeField(_("reply due"), null=True, blank=True)
    access_due = models.DateTimeField(_("access due"), null=True, blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)
    provided_at = models.DateTimeField(_("footage provided at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    refusal_reason = models.TextField(_("reason for refusal"), blank=True)
    # What the (first) approver settled; later approvers approve it as it stands.
    grant_days = models.PositiveIntegerField(_("grant valid for (days)"), null=True, blank=True)
    extractor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("IT staff who extracts"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    redact = models.BooleanField(_("blur other people's faces"), default=False)
    redact_persons = models.BooleanField(
        _("also find people by their shape and blur their heads"), default=False
    )
    watermark = models.BooleanField(_("burn in a watermark"), default=False)
    hold = models.ForeignKey(
        "retention.Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        verbose_name = _("footage request")
        verbose_name_plural = _("footage requests")
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(footage_end__gt=models.F("footage_start")),
                name="request_footage_range_positive",
            ),
        ]
        indexes = [models.Index(fields=["status", "submitted_at"], name="request_status")]

    def __str__(self) -> str:
        return self.number

    @property
    def grant_source(self) -> str:
        return f"request:{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Decision(models.Model):
    """One board member's approval or refusal of a request."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", _("Approved")
        REFUSE = "refuse", _("Refused")

    request = models.ForeignKey(FootageRequest, on_delete=models.CASCADE, related_name="decisions")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Set when the decider acted under the principal's delegation.
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "decided_by"], name="one_decision_each"),
        ]

    def __str__(self) -> str:
        return f"{self.request} {self.verdict} by {self.decided_by}"


class JobState(models.TextChoices):
    QUEUED = "queued", pgettext_lazy("export job", "Queued")
    RUNNING = "running", pgettext_lazy("export job", "Running")
    DONE = "done", pgettext_lazy("export job", "Done")
    FAILED = "failed", pgettext_lazy("export job", "Failed")
    CANCELLED = "cancelled", pgettext_lazy("export job", "Cancelled")


class ExportJob(models.Model):
    """IT's extraction of an approved request's footage (Art. 5), bound to its grant.

    A durable row: ``vigil export-worker`` claims it with a lease it keeps renewing; a
    worker that dies leaves the lease to expire and the job is taken up again, reusing
    the clips it had finished.
    """

    request = models.ForeignKey(FootageRequest, on_delete=models.PROTECT, related_name="exports")
    grant = models.ForeignKey("authz.Grant", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    # {"redact": bool, "persons": bool, "watermark": bool, "keep": [[t, x, y], ...]}
    options = models.JSONField(default=dict)
    stage = models.CharField(max_length=200, blank=True)
    progress = models.FloatField(default=0.0)  # 0..1
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Clips already finished by an earlier attempt: name -> {"sha256", "size", ...}
    checkpoint = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "lease_until"], name="export_job_claim")]

    def __str__(self) -> str:
        return f"export #{self.pk} of {self.request}"

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)


class Package(models.Model):
    """A signed evidence package on disk (``exports/<name>/``)."""

    name = models.CharField(max_length=80, unique=True)
    job = models.OneToOneField(ExportJob, on_delete=models.PROTECT, related_name="package")
    request = models.ForeignKey(FootageRequest, on_delete=models.PROTECT, related_name="packages")
    created_at = models.DateTimeField(default=timezone.now)
    manifest = models.TextField()  # the signed manifest.json, byte for byte
    manifest_sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    redacted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class CustodyEntry(models.Model):
    """The site's copy of each line of a package's custody log (shows truncation)."""

    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="custody")
    seq = models.PositiveIntegerField()
    line = models.TextField()  # the signed JSON line as written in custody.jsonl
    entry_hash = models.CharField(max_length=64)
    event = models.CharField(max_length=20)
    actor_username = models.CharField(max_length=150)
    at = models.DateTimeField()

    class Meta:
        ordering = ["package", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["package", "seq"], name="custody_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.package} #{self.seq} {self.event}"


class DownloadLink(models.Model):
    """A time-limited, single-use link to download a package as a .zip."""

    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link #{self.pk} to {self.package}"


class RequestCounter(models.Model):
    """The last request number given out per year (YC-<year>-<n>)."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"
