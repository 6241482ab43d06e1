from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [NavItem(_("Users"), "accounts:user_list", "user.manage", order=95, section="site")]
