from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """People, roles, sign-in with two-factor and lock-out."""

    name = "vigil.accounts"
    label = "accounts"
    verbose_name = _("Accounts")
