from django.utils.translation import gettext_lazy as _

from vigil.core.nav import NavItem

NAV = [
    NavItem(_("Motion"), "analytics:motion", "footage.playback", order=35),
    NavItem(_("Image quality"), "analytics:quality", "health.view", order=16),
]
