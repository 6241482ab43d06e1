from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [NavItem(_("Status"), "recording:status", "health.view", order=15)]
