from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Footage requests"), "access:list", "request.file", order=40),
    NavItem(_("Verify a package"), "access:verify", None, order=88, section="site"),
    NavItem(_("Delegations"), "access:delegations", "request.delegate", order=89, section="site"),
]
