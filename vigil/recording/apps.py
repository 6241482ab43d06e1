from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingConfig(AppConfig):
    """Recorder nodes, segment catalog, gaps and camera health."""

    name = "vigil.recording"
    label = "recording"
    verbose_name = _("Recording")
