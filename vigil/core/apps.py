from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Web shell: dashboard, navigation, language, time zone, site keys."""

    name = "vigil.core"
    label = "core"
    verbose_name = _("Core")
