from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessConfig(AppConfig):
    """Footage requests, approvals, extraction and evidence packages."""

    name = "vigil.access"
    label = "access"
    verbose_name = _("Footage access")
