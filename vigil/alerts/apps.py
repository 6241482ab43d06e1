from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    """Alerts raised by the recorder, retention and analysis, and their handling."""

    name = "vigil.alerts"
    label = "alerts"
    verbose_name = _("Alerts")
