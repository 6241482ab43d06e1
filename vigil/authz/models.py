"""Access grants: time-boxed permission to specific cameras and a footage range.

Grants are how anyone outside the role matrix (and IT for extraction, Art. 5) reaches
footage: they are created by approved requests and enforced by ``vigil.authz.services``
on every path (live, playback, export, API, media URLs).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class GrantQuerySet(models.QuerySet["Grant"]):
    def active(self, at: datetime | None = None) -> GrantQuerySet:
        now = at or timezone.now()
        return self.filter(revoked_at__isnull=True, valid_from__lte=now, valid_until__gt=now)


class Grant(models.Model):
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("grantee"),
        on_delete=models.PROTECT,
        related_name="grants",
    )
    # Comma-separated footage actions, e.g. "footage.playback,footage.export".
    actions = models.CharField(_("actions"), max_length=200)
    cameras = models.ManyToManyField("school.Camera", verbose_name=_("cameras"))
    footage_start = models.DateTimeField(_("footage from"))
    footage_end = models.DateTimeField(_("footage until"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    source = models.CharField(
        _("source"), max_length=100, help_text=_("What created the grant, e.g. a request.")
    )
    reason = models.TextField(_("purpose"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="grants_created",
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants_revoked",
    )
    revoke_reason = models.TextField(_("revocation reason"), blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(footage_end__gt=models.F("footage_start")),
                name="grant_footage_range_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("valid_from")),
                name="grant_validity_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"grant #{self.pk} → {self.grantee}"

    @property
    def action_list(self) -> list[str]:
        return [a for a in self.actions.split(",") if a]

    def is_active(self, at: datetime | None = None) -> bool:
        now = at or timezone.now()
        return self.revoked_at is None and self.valid_from <= now < self.valid_until


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def active(self, at: datetime | None = None) -> DelegationQuerySet:
        now = at or timezone.now()
        return self.filter(revoked_at__isnull=True, valid_from__lte=now, valid_until__gt=now)


class Delegation(models.Model):
    """The principal lets another member of staff decide footage requests for a while
    (Art. 4.1: the board directs the use of footage; the principal may delegate it).

    While active, the delegate may do the delegated actions (``rules.DELEGATED_ACTIONS``)
    on behalf of the delegator; ``vigil.authz.services.decide`` answers with
    ``via="delegation"``. Expiry and revocation take effect at once.
    """

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("delegated by"),
        on_delete=models.PROTECT,
        related_name="delegations_given",
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("delegate"),
        on_delete=models.PROTECT,
        related_name="delegations_received",
    )
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    reason = models.TextField(_("reason"))
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="delegations_revoked",
    )
    revoke_reason = models.TextField(_("revocation reason"), blank=True)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        verbose_name = _("delegation")
        verbose_name_plural = _("delegations")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("valid_from")),
                name="delegation_validity_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"delegation #{self.pk}: {self.delegator} → {self.delegate}"

    def is_active(self, at: datetime | None = None) -> bool:
        now = at or timezone.now()
        return self.revoked_at is None and self.valid_from <= now < self.valid_until
