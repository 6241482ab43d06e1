from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [NavItem(_("Audit log"), "audit:search", "audit.view", order=90, section="site")]
