from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Storage"), "retention:storage", "storage.view", order=60),
    NavItem(_("Evidence holds"), "retention:hold_list", "hold.place", order=61),
    NavItem(_("Coverage"), "retention:coverage", "retention.report", order=62),
    NavItem(_("Retention policy"), "retention:policy", "settings.manage", order=85, section="site"),
]
