"""The one permission service: may this actor do this action on this resource?

Every view, API endpoint, media URL and command asks here. Footage actions (live,
playback, export, download) are always audited, allowed or not; other actions are
audited here only when refused (the service doing the change records its success).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.authz.models import Delegation, Grant
from vigil.authz.rules import (
    ACTIONS,
    DELEGATED_ACTIONS,
    FOOTAGE_ACTIONS,
    MATRIX,
    OPERATOR_ACTIONS,
    Action,
    Scope,
)
from vigil.school.models import Camera

if TYPE_CHECKING:
    from vigil.accounts.models import User


@dataclass(frozen=True)
class FootageRange:
    """A camera and, for recorded footage, a UTC time range [start, end)."""

    camera: Camera
    start: datetime | None = None
    end: datetime | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "camera": self.camera.code,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


Resource = Camera | FootageRange | None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    article: str = ""
    via: str = "role"  # role, grant, none
    grant_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # The sequence number of the audit entry ``authorize`` wrote for it, if it wrote one.
    audit_seq: int | None = None

    def __bool__(self) -> bool:
        return self.allowed


class AccessDenied(PermissionDenied):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


def _camera_of(resource: Resource) -> Camera | None:
    if isinstance(resource, FootageRange):
        return resource.camera
    return resource


def _access() -> Any:
    return settings.VIGIL.access


def _scope_allows(user: User, scope: Scope, resource: Resource, now: datetime) -> tuple[bool, str]:
    camera = _camera_of(resource)
    if scope == Scope.ALL:
        return True, ""
    if scope in (Scope.DEPARTMENT, Scope.DEPARTMENT_IF_ENABLED, Scope.DEPARTMENT_HEAD_LIVE):
        if scope == Scope.DEPARTMENT_IF_ENABLED and not _access().staff_live_view_own_area:
            return False, _("Live view for staff is not enabled at this school.")
        if scope == Scope.DEPARTMENT_HEAD_LIVE and not _access().department_head_live_view:
            return False, _("Live view for department heads is not enabled at this school.")
        if camera is None:
            return True, ""
        if user.department_id is None or camera.area.department_id != user.department_id:
            return False, _("This camera is not in an area of your department.")
        return True, ""
    if scope == Scope.MAINTENANCE:
        if camera is None:
            return True, ""
        if camera.state != Camera.State.MAINTENANCE:
            return False, _("This camera is not under maintenance.")
        return True, ""
    if scope == Scope.RECENT:
        if not isinstance(resource, FootageRange) or resource.start is None:
            return False, _("A time range is needed.")
        oldest = now - timedelta(hours=_access().guard_playback_hours)
        if resource.start < oldest:
            return False, _(
                "Footage older than %(hours)s hours needs the board's approval (a request)."
            ) % {"hours": _access().guard_playback_hours}
        return True, ""
    return False, _("Not permitted.")


def _grant_covering(user: User, action: Action, resource: Resource, now: datetime) -> Grant | None:
    camera = _camera_of(resource)
    if camera is None:
        return None
    grants = Grant.objects.active(now).filter(
        grantee=user, cameras=camera, actions__contains=action.value
    )
    for grant in grants.order_by("-valid_until"):
        if action.value not in grant.action_list:
            continue
        if action == Action.LIVE_VIEW:
            if grant.footage_start <= now < grant.footage_end:
                return grant
            continue
        if not isinstance(resource, FootageRange) or resource.start is None:
            continue
        end = resource.end or resource.start
        if grant.footage_start <= resource.start and end <= grant.footage_end:
            return grant
    return None


def active_delegation(user: User, now: datetime | None = None) -> Delegation | None:
    """The delegation ``user`` acts under now, if any: active, and its delegator still an
    active account that may delegate (a delegation does not outlive the power behind it)."""
    for delegation in (
        Delegation.objects.active(now or timezone.now())
        .filter(delegate=user, delegator__is_active=True)
        .select_related("delegator")
        .order_by("-valid_until")
    ):
        if MATRIX.get(delegation.delegator.role, {}).get(Action.DELEGATE) is not None:  # type: ignore[call-overload]
            return delegation
    return None


def snapshot_source(resource: Resource) -> Action:
    """What a snapshot of ``resource`` is decided as: playback for a recorded time range
    (a range with an end), live view otherwise."""
    if isinstance(resource, FootageRange) and resource.end is not None:
        return Action.PLAYBACK
    return Action.LIVE_VIEW


def decide(user: User | None, action: Action, resource: Resource = None) -> Decision:
    """Pure decision, no side effects."""
    info = ACTIONS[action]
    if action == Action.SNAPSHOT:
        # A still of footage being watched: allowed exactly when watching it is.
        return replace(decide(user, snapshot_source(resource), resource), article=info.article)
    if user is None or not user.is_authenticated or not user.is_active:
        return Decision(False, _("Please sign in."), info.article, via="none")
    camera = _camera_of(resource)
    if (
        action == Action.LIVE_VIEW
        and camera is not None
        and camera.state == Camera.State.DECOMMISSIONED
    ):
        return Decision(False, _("This camera is decommissioned."), info.article, "none")
    if (
        isinstance(resource, FootageRange)
        and resource.start
        and resource.end
        and resource.end <= resource.start
    ):
        return Decision(False, _("The time range is empty."), info.article, "none")
    now = timezone.now()
    scope = MATRIX.get(user.role, {}).get(action)  # type: ignore[call-overload]
    refusal = ""
    if scope is not None:
        ok, refusal = _scope_allows(user, scope, resource, now)
        if ok:
            return Decision(True, _("Allowed by role."), info.article, via="role")
    if action in DELEGATED_ACTIONS:
        delegation = active_delegation(user, now)
        if delegation is not None:
            return Decision(
                True,
                _("Allowed by delegation from %(name)s.") % {"name": delegation.delegator},
                info.article,
                via="delegation",
                detail={
                    "delegation": delegation.pk,
                    "on_behalf_of": delegation.delegator.get_username(),
                },
            )
    if action in FOOTAGE_ACTIONS:
        grant = _grant_covering(user, action, resource, now)
        if grant is not None:
            return Decision(
                True, _("Allowed by access grant."), info.article, via="grant", grant_id=grant.pk
            )
        if not refusal:
            refusal = _(
                "Your role does not give access to this footage and no valid access grant "
                "covers it. File a request to the board."
            )
    if not refusal:
        refusal = _("Your role does not permit this.")
    return Decision(False, refusal, info.article, via="none")


def authorize(
    actor: Actor,
    action: Action,
    resource: Resource = None,
    *,
    detail: dict[str, Any] | None = None,
) -> Decision:
    """Decide and audit: footage actions always, other actions when refused.

    The returned decision carries the sequence number of the entry written (``audit_seq``),
    so a session can name the entry that opened it. ``detail`` is added to the entry."""
    from vigil.audit.models import Outcome
    from vigil.audit.services import record

    if actor.user is None and actor.via == "cli" and action in OPERATOR_ACTIONS:
        decision = Decision(
            True, _("Allowed to the local operator."), ACTIONS[action].article, via="operator"
        )
    else:
        decision = decide(actor.user, action, resource)
    if action in FOOTAGE_ACTIONS or not decision.allowed:
        entry_detail: dict[str, Any] = {"via": decision.via, "reason": str(decision.reason)}
        if decision.grant_id is not None:
            entry_detail["grant"] = decision.grant_id
        entry_detail.update(decision.detail)
        obj: Any = None
        if isinstance(resource, FootageRange):
            entry_detail.update(resource.describe())
            obj = resource.camera
        elif resource is not None:
            obj = resource
        entry_detail.update(detail or {})
        entry = record(
            actor,
            action.value,
            obj,
            outcome=Outcome.SUCCESS if decision.allowed else Outcome.DENIED,
            detail=entry_detail,
        )
        decision = replace(decision, audit_seq=entry.seq)
    return decision


def require(actor: Actor, action: Action, resource: Resource = None) -> Decision:
    decision = authorize(actor, action, resource)
    if not decision.allowed:
        raise AccessDenied(decision)
    return decision


def can(user: User | None, action: Action, resource: Resource = None) -> bool:
    """For showing or hiding links; never a substitute for ``authorize`` on access."""
    return decide(user, action, resource).allowed


def cameras_for(user: User | None, action: Action) -> QuerySet[Camera]:
    """Cameras on which the user may do ``action`` now (by role or by an active grant)."""
    qs = Camera.objects.select_related("area", "area__department", "recorder")
    if user is None or not user.is_authenticated or not user.is_active:
        return qs.none()
    now = timezone.now()
    scope = MATRIX.get(user.role, {}).get(action)  # type: ignore[call-overload]
    if action == Action.LIVE_VIEW:
        qs = qs.exclude(state=Camera.State.DECOMMISSIONED)
    if scope in (Scope.ALL, Scope.RECENT):
        return qs  # every camera (an empty Q() would vanish when OR-ed with the grants)
    role_q = Q(pk__in=[])
    if scope == Scope.MAINTENANCE:
        role_q = Q(state=Camera.State.MAINTENANCE)
    elif scope in (Scope.DEPARTMENT, Scope.DEPARTMENT_IF_ENABLED, Scope.DEPARTMENT_HEAD_LIVE):
        enabled = (
            scope == Scope.DEPARTMENT
            or (scope == Scope.DEPARTMENT_IF_ENABLED and _access().staff_live_view_own_area)
            or (scope == Scope.DEPARTMENT_HEAD_LIVE and _access().department_head_live_view)
        )
        if enabled and user.department_id is not None:
            role_q = Q(area__department_id=user.department_id)
    grant_q = Q(pk__in=[])
    if action in FOOTAGE_ACTIONS:
        grant_ids = (
            Grant.objects.active(now)
            .filter(grantee=user, actions__contains=action.value)
            .values_list("cameras", flat=True)
        )
        grant_q = Q(pk__in=[g for g in grant_ids if g is not None])
    return qs.filter(role_q | grant_q).distinct()


def authorize_many(
    actor: Actor, action: Action, resources: list[FootageRange], *, purpose: str = ""
) -> dict[int, Decision]:
    """Decide a footage action for several cameras at once and audit it as ONE entry.

    For pages that show footage-derived pictures of many cameras (a search of motion
    events with thumbnails): the entry lists every camera and the time range, allowed
    and refused, so the trail is complete without one entry per picture. Returns the
    decision per camera id.
    """
    from vigil.audit.models import Outcome
    from vigil.audit.services import record

    decisions = {r.camera.pk: decide(actor.user, action, r) for r in resources}
    if not resources:
        return decisions
    allowed = [r for r in resources if decisions[r.camera.pk].allowed]
    refused = [r for r in resources if not decisions[r.camera.pk].allowed]
    starts = [r.start for r in resources if r.start is not None]
    ends = [r.end for r in resources if r.end is not None]
    detail: dict[str, Any] = {
        "cameras": sorted(r.camera.code for r in allowed),
        "start": min(starts).isoformat() if starts else None,
        "end": max(ends).isoformat() if ends else None,
        "via": sorted({decisions[r.camera.pk].via for r in allowed}),
    }
    grants = sorted({d.grant_id for d in decisions.values() if d.grant_id is not None})
    if grants:
        detail["grants"] = grants
    if refused:
        detail["refused"] = sorted(r.camera.code for r in refused)
        detail["reason"] = str(decisions[refused[0].camera.pk].reason)
    if purpose:
        detail["purpose"] = purpose
    record(
        actor,
        action.value,
        resources[0].camera if len(resources) == 1 else None,
        outcome=Outcome.SUCCESS if allowed else Outcome.DENIED,
        detail=detail,
    )
    return decisions
