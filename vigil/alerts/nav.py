from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [NavItem(_("Alerts"), "alerts:list", "alert.view", order=12, badge_url_name="alerts:badge")]
