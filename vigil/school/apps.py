from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchoolConfig(AppConfig):
    """The school, departments, areas, recorders and cameras."""

    name = "vigil.school"
    label = "school"
    verbose_name = _("School")
