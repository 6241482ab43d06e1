"""Human names of alert causes, translated (the stored title is in the site's language
at the time it was raised; pages name the cause in the reader's language)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CAUSE_LABELS = {
    "camera_offline": _("No video (recording)"),
    "tamper_covered": _("Camera covered or sprayed"),
    "tamper_blurred": _("Picture blurred or out of focus"),
    "tamper_moved": _("Camera moved or turned away"),
    "tamper_dark": _("Picture too dark"),
    "tamper_frozen": _("Picture frozen"),
    "tamper_video_lost": _("Video lost (analysis)"),
    "storage_floor_at_risk": _("Retention floor at risk"),
    "retention_clock_suspect": _("Clock runs ahead of the footage"),
}


def cause_label(cause: str) -> str:
    return str(CAUSE_LABELS.get(cause, cause.replace("_", " ")))
