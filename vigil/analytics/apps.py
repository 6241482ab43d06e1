from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    """Motion, tamper, image quality and alerts."""

    name = "vigil.analytics"
    label = "analytics"
    verbose_name = _("Analytics")
