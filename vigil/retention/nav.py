from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Storage plan"), "retention:storage", "storage.view", order=60, section="storage"),
    NavItem(_("Coverage"), "retention:coverage", "retention.report", order=62, section="storage"),
    NavItem(_("Evidence holds"), "retention:hold_list", "hold.place", order=61, section="storage"),
    NavItem(_("Retention policy"), "retention:policy", "settings.manage", order=85, section="site"),
]
