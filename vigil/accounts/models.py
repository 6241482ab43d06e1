"""People who use Vigil. One role each, from the regulation (see ``roles.py``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from vigil.accounts.roles import BOARD_ROLES, Role


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    department = models.ForeignKey(
        "school.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    organisation = models.CharField(
        _("organisation"),
        max_length=200,
        blank=True,
        help_text=_("For people outside the school: the unit they belong to."),
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    must_change_password = models.BooleanField(_("must change password"), default=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    @property
    def is_board(self) -> bool:
        return self.role in BOARD_ROLES

    @property
    def requires_two_factor(self) -> bool:
        return self.role in settings.VIGIL_TWO_FACTOR_ROLES
