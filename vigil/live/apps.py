from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveConfig(AppConfig):
    """Live wall and playback."""

    name = "vigil.live"
    label = "live"
    verbose_name = _("Live")
