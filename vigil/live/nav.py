from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Live wall"), "live:wall", "footage.live", order=10),
    NavItem(_("Playback"), "live:playback", "footage.playback", order=11),
]
