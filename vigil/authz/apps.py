from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthzConfig(AppConfig):
    """The one permission service and access grants."""

    name = "vigil.authz"
    label = "authz"
    verbose_name = _("Authorization")
