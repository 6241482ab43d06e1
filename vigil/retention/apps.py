from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetentionConfig(AppConfig):
    """Retention floor, capacity model, eviction, holds and coverage."""

    name = "vigil.retention"
    label = "retention"
    verbose_name = _("Retention")
