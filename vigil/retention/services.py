"""Retention use cases: the policy, evidence holds, the sweep, the capacity plan and the
coverage reports. Each change checks permission with the authz service and is audited in
its own transaction.

The API other apps call:

    place_hold(actor, cameras, start, end, reason, source="") -> Hold
    release_hold(actor, hold, reason) -> Hold
    is_held(camera, start, end) -> bool
    recording_allowed(volume) -> bool          # the recorder asks before writing
    sweep(volume, now=None, *, actor=None, dry_run=False) -> SweepResult
    finish_interrupted_deletions() -> int      # call at start-up
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.recording.models import DeletionIntent
from vigil.recording.storage import finish_pending_deletions
from vigil.retention import policy
from vigil.retention.eviction import SweepResult, recording_allowed
from vigil.retention.eviction import sweep as _sweep
from vigil.retention.models import CameraPolicy, Hold, SitePolicy, VolumeState
from vigil.school.models import Camera, StorageVolume
from vigil.school.validation import FieldError, ValidationFailed

__all__ = [
    "SweepResult",
    "finish_interrupted_deletions",
    "is_held",
    "place_hold",
    "recording_allowed",
    "release_hold",
    "set_camera_policy",
    "set_site_policy",
    "sweep",
    "sweep_all",
]

MAX_DAYS = 3650
# A hold may reach this far into the future (an incident still going on), no further.
HOLD_MAX_AHEAD = timedelta(hours=24)


# ------------------------------------------------------------------------- policy


def _days(errors: list[FieldError], name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        days = int(str(value).strip())
    except ValueError:
        errors.append(
            FieldError(name, _("'%(value)s' is not a whole number of days") % {"value": value})
        )
        return None
    if not 1 <= days <= MAX_DAYS:
        errors.append(FieldError(name, _("must be between 1 and %(max)s days") % {"max": MAX_DAYS}))
        return None
    return days


def set_site_policy(actor: Actor, *, floor_days: Any, ceiling_days: Any) -> SitePolicy:
    """The site's floor (never below the regulation's) and optional ceiling."""
    require(actor, Action.SETTINGS_MANAGE)
    errors: list[FieldError] = []
    floor = _days(errors, "floor_days", floor_days)
    ceiling = _days(errors, "ceiling_days", ceiling_days)
    minimum = policy.regulation_floor()
    if floor is not None and floor < minimum:
        errors.append(
            FieldError(
                "floor_days",
                _(
                    "cannot be below %(n)s days, the floor set by the regulation "
                    "([retention] floor_days in vigil.toml, Art. 5)"
                )
                % {"n": minimum},
            )
        )
    effective_floor = max(floor or minimum, minimum)
    if ceiling is not None and ceiling < effective_floor:
        errors.append(
            FieldError(
                "ceiling_days",
                _("cannot be below the floor (%(n)s days)") % {"n": effective_floor},
            )
        )
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        current = SitePolicy.objects.select_for_update().filter(pk=1).first() or SitePolicy(pk=1)
        before = {"floor_days": current.floor_days, "ceiling_days": current.ceiling_days}
        current.floor_days = floor
        current.ceiling_days = ceiling
        current.updated_by = actor.username
        current.save()
        record(
            actor,
            "retention.site_policy",
            ("retention.sitepolicy", "1", "site retention policy"),
            detail={
                "before": before,
                "after": {"floor_days": floor, "ceiling_days": ceiling},
                "effective_floor_days": effective_floor,
            },
        )
    return current


def set_camera_policy(
    actor: Actor, camera: Camera, *, floor_days: Any, ceiling_days: Any
) -> CameraPolicy | None:
    """A camera's own floor (only above the site's) and ceiling; both empty removes it."""
    require(actor, Action.SITE_MANAGE, camera)
    errors: list[FieldError] = []
    floor = _days(errors, "floor_days", floor_days)
    ceiling = _days(errors, "ceiling_days", ceiling_days)
    site = policy.site_effective()
    if floor is not None and floor < site.floor_days:
        errors.append(
            FieldError(
                "floor_days",
                _(
                    "a camera's floor can only be raised: %(floor)s days is below the "
                    "site's floor of %(site)s days"
                )
                % {"floor": floor, "site": site.floor_days},
            )
        )
    effective_floor = max(floor or 0, site.floor_days)
    if ceiling is not None and ceiling < effective_floor:
        errors.append(
            FieldError(
                "ceiling_days",
                _("cannot be below the floor (%(n)s days)") % {"n": effective_floor},
            )
        )
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        existing = CameraPolicy.objects.select_for_update().filter(camera=camera).first()
        before = (
            {"floor_days": existing.floor_days, "ceiling_days": existing.ceiling_days}
            if existing
            else None
        )
        result: CameraPolicy | None
        if floor is None and ceiling is None:
            if existing is not None:
                existing.delete()
            result = None
        else:
            result = existing or CameraPolicy(camera=camera)
            result.floor_days = floor
            result.ceiling_days = ceiling
            result.updated_by = actor.username
            result.save()
        record(
            actor,
            "retention.camera_policy",
            camera,
            detail={"before": before, "after": {"floor_days": floor, "ceiling_days": ceiling}},
        )
    return result


# -------------------------------------------------------------------------- holds


def _camera_list(cameras: Camera | Iterable[Camera]) -> list[Camera]:
    if isinstance(cameras, Camera):
        return [cameras]
    return list(cameras)


def place_hold(  # noqa: PLR0917 (the footage-request workflow calls it positionally)
    actor: Actor,
    cameras: Camera | Iterable[Camera],
    start: datetime,
    end: datetime,
    reason: str,
    source: str = "",
) -> Hold:
    """Keep these cameras' footage in [start, end) beyond floor, ceiling and disk pressure
    until released (Art. 4.3)."""
    cams = _camera_list(cameras)
    require(actor, Action.HOLD_PLACE, cams[0] if len(cams) == 1 else None)
    errors: list[FieldError] = []
    now = timezone.now()
    if not cams:
        errors.append(FieldError("cameras", _("choose at least one camera")))
    if not (reason or "").strip():
        errors.append(FieldError("reason", _("say why the footage must be kept")))
    if start is None or end is None:
        errors.append(FieldError("start", _("a time range is needed")))
    elif end <= start:
        errors.append(FieldError("end", _("must be after the start")))
    elif start > now:
        errors.append(FieldError("start", _("is in the future: there is no footage to hold yet")))
    elif end > now + HOLD_MAX_AHEAD:
        errors.append(FieldError("end", _("may be at most 24 hours ahead")))
    if len(source) > 100:
        errors.append(FieldError("source", _("is longer than 100 characters")))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        hold = Hold.objects.create(
            start=start,
            end=end,
            reason=reason.strip(),
            source=source,
            placed_by=actor.user,
            placed_by_name=actor.username,
            placed_at=now,
        )
        hold.cameras.set(cams)
        record(
            actor,
            "hold.place",
            hold,
            detail={
                "cameras": sorted(c.code for c in cams),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "reason": hold.reason,
                "source": source,
            },
        )
    return hold


def release_hold(actor: Actor, hold: Hold, reason: str) -> Hold:
    """Release a hold (board members and the principal, Art. 4.1): its footage follows the
    normal retention again."""
    require(actor, Action.HOLD_RELEASE)
    if not (reason or "").strip():
        raise ValidationFailed([FieldError("reason", _("say why the hold is released"))])
    with transaction.atomic():
        locked = Hold.objects.select_for_update().get(pk=hold.pk)
        if locked.released_at is not None:
            raise ValidationFailed([FieldError("hold", _("this hold was already released"))])
        locked.released_at = timezone.now()
        locked.released_by = actor.user
        locked.released_by_name = actor.username
        locked.release_reason = reason.strip()
        locked.save(
            update_fields=["released_at", "released_by", "released_by_name", "release_reason"]
        )
        record(
            actor,
            "hold.release",
            locked,
            detail={
                "cameras": sorted(locked.cameras.values_list("code", flat=True)),
                "reason": locked.release_reason,
            },
        )
    return locked


def is_held(camera: Camera, start: datetime, end: datetime) -> bool:
    """Does an active hold cover any of this camera's footage in [start, end)?"""
    return Hold.objects.active().filter(cameras=camera, start__lt=end, end__gt=start).exists()


def active_holds(cameras: Sequence[Camera] | None = None) -> list[Hold]:
    qs = Hold.objects.active().prefetch_related("cameras")
    if cameras is not None:
        qs = qs.filter(cameras__in=cameras).distinct()
    return list(qs.order_by("start"))


# -------------------------------------------------------------------------- sweep


def sweep(
    volume: StorageVolume,
    now: datetime | None = None,
    *,
    actor: Actor | None = None,
    dry_run: bool = False,
) -> SweepResult:
    """One retention sweep of a volume (the recorder calls this periodically)."""
    return _sweep(volume, now, actor=actor, dry_run=dry_run)


def sweep_all(
    now: datetime | None = None, *, actor: Actor | None = None, dry_run: bool = False
) -> list[SweepResult]:
    return [
        _sweep(v, now, actor=actor, dry_run=dry_run)
        for v in StorageVolume.objects.select_related("recorder").order_by(
            "recorder__code", "label"
        )
    ]


def finish_interrupted_deletions() -> int:
    """Finish deletions a crash interrupted (deletion intents left behind): call at
    start-up, before the first sweep. Returns how many files were concerned."""
    pending = DeletionIntent.objects.count()
    if pending:
        finish_pending_deletions()
        # Usage counts cached before the crash may include what was just deleted.
        VolumeState.objects.update(used_recounted_at=None)
    return pending
