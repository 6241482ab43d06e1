from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Cameras"), "school:camera_list", "site.view", order=20),
    NavItem(_("Areas"), "school:area_list", "site.view", order=80, section="site"),
    NavItem(_("Departments"), "school:department_list", "site.view", order=81, section="site"),
    NavItem(_("Recorders"), "school:recorder_list", "site.view", order=82, section="site"),
]
