"""The site: the school, its departments and areas, recorders with volumes, and cameras.

Article references: areas are owned by departments (Art. 6, the security office being
the default owner); a camera counts as in service only with a passed inspection
(Art. 2.1); recorders and their capacity come from Art. 5.
"""

from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
    _("Use 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit."),
)


class School(models.Model):
    """The one school this installation serves."""

    name = models.CharField(_("name"), max_length=200)
    short_name = models.CharField(_("short name"), max_length=80, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    regulation_title = models.CharField(_("camera regulation"), max_length=300, blank=True)
    is_demo = models.BooleanField(_("demo installation"), default=False)
    installation_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("school")
        verbose_name_plural = _("school")

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    """A bộ phận: answers for the cameras in its areas (Art. 6)."""

    class Kind(models.TextChoices):
        BOARD = "board", _("Board of principals")
        SECURITY = "security", _("Security office")
        IT = "it", _("IT")
        FINANCE = "finance", _("Finance and accounting")
        TEACHING = "teaching", _("Teaching group")
        KITCHEN = "kitchen", _("Kitchen")
        MEDICAL = "medical", _("Medical room")
        OFFICE = "office", _("Administrative office")
        OTHER = "other", _("Other")

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    is_security_office = models.BooleanField(
        _("security office"),
        default=False,
        help_text=_("Answers for every area no other department owns (Art. 6)."),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_security_office"],
                condition=Q(is_security_office=True),
                name="one_security_office",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Area(models.Model):
    class Kind(models.TextChoices):
        GATE = "gate", _("Gate")
        CLASSROOM = "classroom", _("Classroom")
        CORRIDOR = "corridor", _("Corridor")
        STAIRS = "stairs", _("Stairs")
        PLAYGROUND = "playground", _("Playground")
        KITCHEN = "kitchen", _("Kitchen")
        HALL = "hall", _("Hall")
        OFFICE = "office", _("Office")
        CAR_PARK = "car_park", _("Car park")
        TECHNICAL = "technical", _("Technical room")
        OTHER = "other", _("Other")

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    building = models.CharField(_("building / floor"), max_length=100, blank=True)
    department = models.ForeignKey(
        Department,
        verbose_name=_("responsible department"),
        on_delete=models.PROTECT,
        related_name="areas",
    )

    class Meta:
        verbose_name = _("area")
        verbose_name_plural = _("areas")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Recorder(models.Model):
    """A đầu ghi: one recorder node with its storage volumes (Art. 5)."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    model = models.CharField(_("model"), max_length=120, blank=True)
    serial_number = models.CharField(_("serial number"), max_length=120, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("recorder")
        verbose_name_plural = _("recorders")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def capacity_bytes(self) -> int:
        return sum(v.capacity_bytes for v in self.volumes.all())


class StorageVolume(models.Model):
    recorder = models.ForeignKey(
        Recorder, verbose_name=_("recorder"), on_delete=models.CASCADE, related_name="volumes"
    )
    label = models.CharField(_("label"), max_length=80)
    path = models.CharField(
        _("path"), max_length=500, help_text=_("Directory where this volume's footage is kept.")
    )
    capacity_bytes = models.BigIntegerField(
        _("capacity (bytes)"), validators=[MinValueValidator(1)]
    )
    # Written into the volume's marker file so a swapped disk or database is caught.
    uuid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)

    class Meta:
        verbose_name = _("storage volume")
        verbose_name_plural = _("storage volumes")
        ordering = ["recorder__code", "label"]
        constraints = [
            models.UniqueConstraint(fields=["recorder", "label"], name="volume_label_per_recorder"),
            models.UniqueConstraint(fields=["path"], name="volume_path_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.recorder.code}:{self.label}"


class Supplier(models.Model):
    """Đơn vị cung cấp: installs, maintains and repairs cameras (Art. 8.2)."""

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    contact_person = models.CharField(_("contact person"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("email"), blank=True)
    contract_reference = models.CharField(_("contract"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("supplier")
        verbose_name_plural = _("suppliers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StreamCredential(models.Model):
    """A camera's login, kept apart from its URLs and encrypted at rest.

    Never rendered back to a page, the API or a log: forms show only whether one is set.
    """

    username = models.CharField(max_length=200, blank=True)
    password_encrypted = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("stream credential")
        verbose_name_plural = _("stream credentials")

    def __str__(self) -> str:
        return f"credential #{self.pk}"


class CameraQuerySet(models.QuerySet["Camera"]):
    def with_inspection(self) -> CameraQuerySet:
        latest = Inspection.objects.filter(camera=models.OuterRef("pk")).order_by(
            "-inspected_on", "-id"
        )
        return self.annotate(
            latest_inspection_result=models.Subquery(latest.values("result")[:1]),
            latest_inspection_date=models.Subquery(latest.values("inspected_on")[:1]),
        )

    def in_service(self) -> CameraQuerySet:
        """Art. 2.1: in service state and a passed latest inspection."""
        return self.with_inspection().filter(
            state=Camera.State.IN_SERVICE, latest_inspection_result=Inspection.Result.PASSED
        )


class Camera(models.Model):
    class State(models.TextChoices):
        IN_SERVICE = "in_service", _("In service")
        MAINTENANCE = "maintenance", _("Under maintenance")
        DECOMMISSIONED = "decommissioned", _("Decommissioned")

    class Codec(models.TextChoices):
        H264 = "h264", "H.264"
        H265 = "h265", "H.265"

    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    area = models.ForeignKey(
        Area, verbose_name=_("area"), on_delete=models.PROTECT, related_name="cameras"
    )
    recorder = models.ForeignKey(
        Recorder, verbose_name=_("recorder"), on_delete=models.PROTECT, related_name="cameras"
    )
    main_url = models.CharField(_("main stream URL"), max_length=500)
    sub_url = models.CharField(_("sub-stream URL"), max_length=500, blank=True)
    credential = models.OneToOneField(
        StreamCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="camera"
    )
    manufacturer = models.CharField(_("manufacturer"), max_length=100, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    codec = models.CharField(_("codec"), max_length=8, choices=Codec.choices, default=Codec.H264)
    width = models.PositiveIntegerField(_("width"), default=1920)
    height = models.PositiveIntegerField(_("height"), default=1080)
    fps = models.PositiveIntegerField(_("frames per second"), default=15)
    bitrate_kbps = models.PositiveIntegerField(_("bitrate (kbit/s)"), default=2048)
    sub_codec = models.CharField(
        _("sub-stream codec"), max_length=8, choices=Codec.choices, default=Codec.H264
    )
    sub_width = models.PositiveIntegerField(_("sub-stream width"), default=640)
    sub_height = models.PositiveIntegerField(_("sub-stream height"), default=360)
    supplier = models.ForeignKey(
        Supplier,
        verbose_name=_("supplier"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cameras",
    )
    install_date = models.DateField(_("install date"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.IN_SERVICE
    )
    position_notes = models.CharField(_("position"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CameraQuerySet.as_manager()

    class Meta:
        verbose_name = _("camera")
        verbose_name_plural = _("cameras")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def department(self) -> Department:
        return self.area.department

    def latest_inspection(self) -> Inspection | None:
        return self.inspections.order_by("-inspected_on", "-id").first()

    @property
    def inspection_passed(self) -> bool:
        latest = self.latest_inspection()
        return latest is not None and latest.result == Inspection.Result.PASSED

    @property
    def counts_in_service(self) -> bool:
        """Art. 2.1: in service only when its state says so and its inspection passed."""
        return self.state == self.State.IN_SERVICE and self.inspection_passed


class Inspection(models.Model):
    """A technical and image-quality inspection record (kiểm định, Art. 2.1)."""

    class Result(models.TextChoices):
        PASSED = "passed", _("Passed")
        FAILED = "failed", _("Failed")

    camera = models.ForeignKey(
        Camera, verbose_name=_("camera"), on_delete=models.CASCADE, related_name="inspections"
    )
    inspected_on = models.DateField(_("inspected on"))
    result = models.CharField(_("result"), max_length=10, choices=Result.choices)
    inspector = models.CharField(_("inspector"), max_length=200, blank=True)
    certificate = models.CharField(_("certificate number"), max_length=120, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")
        ordering = ["-inspected_on", "-id"]

    def __str__(self) -> str:
        return f"{self.camera.code} {self.inspected_on} {self.result}"

    @property
    def is_passed(self) -> bool:
        return self.result == self.Result.PASSED
