"""Footage requests: filing, the board's decision, grants, delegation, extraction jobs,
evidence packages and their downloads. Each change asks the permission service, runs in
one transaction and writes its audit entry there.

The API the pages, the JSON API and the commands call:

    file_request(actor, **fields) -> FootageRequest
    approve(actor, req, **settings) / refuse(actor, req, reason) -> FootageRequest
    withdraw(actor, req) -> FootageRequest
    list_requests(actor, state=, kind=) -> QuerySet   (what the actor may list)
    may_decide / may_withdraw / may_export(user, req), may_verify(user) -> bool
                                                      (for showing forms; each change asks again)
    revoke_grant(actor, grant, reason) -> Grant
    delegate(actor, delegate, until, reason) / end_delegation(actor, d, reason)
    create_export(actor, req, options) / retry_export(actor, job) / cancel_export(actor, job)
    create_download_link(actor, package) -> (DownloadLink, token)
    open_download(actor, token) -> Download            (appends to the custody log)
    open_package_media(actor, session, package, name) -> PackageMedia | None
    verify_on_site(path_or_package) -> package.Report
    verify_package(actor, package) -> package.Report   (the site's own copy; board, IT)
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from vigil.access import deadlines
from vigil.access import package as pkg
from vigil.access.models import (
    OPEN_STATUSES,
    CustodyEntry,
    Decision,
    DownloadLink,
    ExportJob,
    FootageRequest,
    JobState,
    Package,
    RequestCounter,
    RequestForm,
    RequestKind,
    RequestStatus,
)
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import BOARD_ROLES, INTERNAL_ROLES, Role
from vigil.audit.services import record
from vigil.authz.models import Delegation, Grant
from vigil.authz.rules import Action
from vigil.authz.services import (
    AccessDenied,
    FootageRange,
    authorize,
    can,
    decide,
    require,
)
from vigil.authz.services import (
    Decision as AuthzDecision,
)
from vigil.school.models import Camera, Department
from vigil.school.validation import FieldError, ValidationFailed

MAX_CAMERAS = 16
MAX_SPAN = timedelta(days=7)
MIN_PURPOSE = 10
# Which kinds a role may file: outsiders ask through their own kinds (Art. 4.2; the law
# for parents); everyone filmed may complain (Art. 3); the school's staff review and
# investigate (Art. 4.1, 4.3).
KINDS_FOR_ROLE: dict[str, tuple[str, ...]] = {
    Role.GUARDIAN: (RequestKind.GUARDIAN, RequestKind.COMPLAINT),
    Role.EXTERNAL_REQUESTER: (RequestKind.OUTSIDE_PARTY, RequestKind.COMPLAINT),
}
INTERNAL_KINDS = (RequestKind.INTERNAL_REVIEW, RequestKind.COMPLAINT, RequestKind.INVESTIGATION)


def _cfg() -> Any:
    return settings.VIGIL.access


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _invalid(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, reason)])


def _refused(
    actor: Actor, action: str, obj: Any, reason: str, detail: dict[str, Any] | None = None
) -> AccessDenied:
    """Audit a refusal the permission matrix cannot express (who started a job, whose
    request it is) in its own transaction, and return the error to raise."""
    with transaction.atomic():
        record(actor, action, obj, outcome="denied", detail={**(detail or {}), "reason": reason})
    return AccessDenied(AuthzDecision(False, reason, via="none"))


def kinds_for_role(role: str) -> tuple[str, ...]:
    return KINDS_FOR_ROLE.get(role, INTERNAL_KINDS)


def kinds_for(user: User) -> tuple[str, ...]:
    return kinds_for_role(user.role)


def is_outside(user: User) -> bool:
    """Outside the school's organisation: a copy for them leaves the school."""
    return user.role not in INTERNAL_ROLES


def approvals_needed(kind: str, form: str, requester: User) -> int:
    cfg = _cfg()
    if cfg.two_person_approval_outside and kind == RequestKind.OUTSIDE_PARTY:
        return 2
    if cfg.two_person_approval_copies and form == RequestForm.COPY and is_outside(requester):
        return 2
    return 1


def _next_number(now: datetime) -> str:
    year = now.astimezone(_tz()).year
    counter, _created = RequestCounter.objects.select_for_update().get_or_create(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"YC-{year}-{counter.last:04d}"


# -------------------------------------------------------------------------- filing


def file_request(
    actor: Actor,
    *,
    kind: str,
    form: str,
    purpose: str,
    cameras: Iterable[Camera],
    start: datetime | None,
    end: datetime | None,
    subject: str = "",
    department: Department | None = None,
    recipient: str = "",
    requester: User | None = None,
) -> FootageRequest:
    """File a request for the actor, or (board, IT: a paper request received at the
    school) for ``requester``."""
    require(actor, Action.REQUEST_FILE)
    me = actor.user
    assert me is not None  # REQUEST_FILE is never the operator's
    if requester is not None and requester.pk != me.pk:
        require(actor, Action.REQUEST_VIEW_ALL)  # those who receive requests at the school
    who = requester or me
    cams = list(cameras)
    errors: list[FieldError] = []
    now = timezone.now()
    if not who.is_active:
        errors.append(FieldError("requester", _("this account is not active")))
    if not decide(who, Action.REQUEST_FILE).allowed:
        errors.append(FieldError("requester", _("this person may not file requests")))
    if kind not in RequestKind.values:
        errors.append(FieldError("kind", _("choose the kind of request")))
    elif kind not in kinds_for(who):
        role = who.get_role_display()
        errors.append(
            FieldError("kind", _("this kind of request is not open to %(role)s") % {"role": role})
        )
    if form not in RequestForm.values:
        errors.append(FieldError("form", _("choose viewing on site or a copy")))
    if len((purpose or "").strip()) < MIN_PURPOSE:
        errors.append(FieldError("purpose", _("say what the footage is needed for")))
    if not cams:
        errors.append(FieldError("cameras", _("choose at least one camera")))
    elif len(cams) > MAX_CAMERAS:
        errors.append(FieldError("cameras", _("at most %(n)s cameras") % {"n": MAX_CAMERAS}))
    if start is None or end is None:
        errors.append(FieldError("start", _("a time range is needed")))
    elif end <= start:
        errors.append(FieldError("end", _("must be after the start")))
    elif start >= now:
        errors.append(FieldError("start", _("is in the future: there is no footage yet")))
    elif end - start > MAX_SPAN:
        errors.append(FieldError("end", _("a request covers at most 7 days")))
    if kind == RequestKind.GUARDIAN and not (subject or "").strip():
        errors.append(FieldError("subject", _("name the child and their class")))
    if kind == RequestKind.INTERNAL_REVIEW:
        department = department or who.department
        if department is None:
            errors.append(FieldError("department", _("name the department that reviews")))
    if errors:
        raise ValidationFailed(errors)
    assert start is not None
    assert end is not None
    end = min(end, now)
    organisation = who.organisation or (who.department.name if who.department else "")
    default_recipient = f"{who.display_name}" + (f", {organisation}" if organisation else "")
    with transaction.atomic():
        req = FootageRequest.objects.create(
            number=_next_number(now),
            kind=kind,
            form=form,
            requester=who,
            filed_by=me if who.pk != me.pk else None,
            department=department if kind == RequestKind.INTERNAL_REVIEW else None,
            organisation=organisation[:200],
            subject=(subject or "").strip()[:300],
            purpose=purpose.strip(),
            recipient=(recipient or default_recipient).strip()[:300],
            footage_start=start,
            footage_end=end,
            approvals_needed=approvals_needed(kind, form, who),
            submitted_at=now,
            redact=form == RequestForm.COPY and is_outside(who),
        )
        if kind == RequestKind.GUARDIAN:
            cfg = _cfg()
            req.reply_due = deadlines.working_days_after(
                now, cfg.reply_working_days, set(cfg.holidays), _tz()
            )
            req.access_due = deadlines.days_after(now, cfg.access_days, _tz())
            req.save(update_fields=["reply_due", "access_due"])
        req.cameras.set(cams)
        record(
            actor,
            "request.file",
            req,
            detail={
                "number": req.number,
                "kind": kind,
                "form": form,
                "requester": who.get_username(),
                "cameras": sorted(c.code for c in cams),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "approvals_needed": req.approvals_needed,
            },
        )
    return req


# ------------------------------------------------------------------------ visibility


def visible_requests(user: User) -> QuerySet[FootageRequest]:
    qs = FootageRequest.objects.select_related("requester", "department").prefetch_related(
        "cameras"
    )
    if can(user, Action.REQUEST_VIEW_ALL):
        return qs
    mine = Q(requester=user) | Q(filed_by=user)
    # IT staff named to extract a request see it (Art. 5), with its grant.
    return qs.filter(mine | Q(extractor=user)).distinct()


def can_view(user: User, req: FootageRequest) -> bool:
    return visible_requests(user).filter(pk=req.pk).exists()


def list_requests(actor: Actor, *, state: str = "all", kind: str = "") -> QuerySet[FootageRequest]:
    """The requests the actor may list: all of them for those who receive requests, their
    own (or those they extract) for those who may file. ``state`` is "open" (still to be
    decided), "all" or a status; ``kind`` a kind of request or empty for every kind."""
    if actor.user is None or not can(actor.user, Action.REQUEST_VIEW_ALL):
        require(actor, Action.REQUEST_FILE)
    assert actor.user is not None
    qs = visible_requests(actor.user)
    if state == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif state in RequestStatus.values:
        qs = qs.filter(status=state)
    if kind in RequestKind.values:
        qs = qs.filter(kind=kind)
    return qs


def request_grants(req: FootageRequest) -> QuerySet[Grant]:
    return Grant.objects.filter(source=req.grant_source).select_related("grantee")


# -------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class Authority:
    """Who decides and under what: their role, or the principal's delegation."""

    user: User
    on_behalf_of: User | None

    @property
    def key(self) -> int:
        """Whose power this is: two approvals must come from two different powers."""
        return (self.on_behalf_of or self.user).pk


def _authority(actor: Actor, decision: AuthzDecision) -> Authority:
    assert actor.user is not None
    return _authority_of(actor.user, decision)


def _authority_of(user: User, decision: AuthzDecision) -> Authority:
    on_behalf: User | None = None
    if decision.via == "delegation":
        # The delegation the permission service allowed this under, not one looked up
        # again: it may have ended in between, and the decision and its record must agree.
        delegation = Delegation.objects.select_related("delegator").get(
            pk=decision.detail["delegation"]
        )
        on_behalf = delegation.delegator
    return Authority(user, on_behalf)


def _decidable(authority: Authority, req: FootageRequest) -> Authority:
    """Checks that this authority may decide this request now (inside its transaction)."""
    if req.status not in OPEN_STATUSES:
        raise _invalid("status", _("this request has already been decided"))
    if authority.user.pk in (req.requester_id, req.filed_by_id):
        raise _invalid("decided_by", _("no one may decide their own request"))
    earlier = list(req.decisions.select_related("decided_by", "on_behalf_of"))
    if any(d.decided_by_id == authority.user.pk for d in earlier):
        raise _invalid("decided_by", _("you have already approved this request"))
    if any((d.on_behalf_of_id or d.decided_by_id) == authority.key for d in earlier):
        raise _invalid("decided_by", _("this request was already approved with the same authority"))
    return authority


def may_decide(user: User, req: FootageRequest) -> bool:
    """For showing the decision forms: the same rules ``approve`` and ``refuse`` apply
    (which ask the permission service again)."""
    decision = decide(user, Action.REQUEST_DECIDE)
    if not decision.allowed:
        return False
    try:
        _decidable(_authority_of(user, decision), req)
    except ValidationFailed:
        return False
    return True


def approve(
    actor: Actor,
    req: FootageRequest,
    *,
    reason: str = "",
    grant_days: int | None = None,
    extractor: User | str | None = None,
    redact: bool | None = None,
    redact_persons: bool | None = None,
    watermark: bool | None = None,
) -> FootageRequest:
    """Approve. The first approval settles the grant's validity, the IT staff member who
    extracts a copy and the redaction; a second approval (when needed) confirms them.
    The approval that completes the count creates the grants (and, for an investigation,
    the evidence hold).

    ``extractor`` is a user or a user name; an unknown name is refused, never replaced
    by the default IT staff member (only no choice at all falls back to the default)."""
    cfg = _cfg()
    # Asked before the transaction: a refusal's audit entry must not roll back with it.
    authority = _authority(actor, require(actor, Action.REQUEST_DECIDE))
    if isinstance(extractor, str):
        name = extractor.strip()
        extractor = User.objects.filter(username=name).first() if name else None
        if name and extractor is None:
            raise _invalid("extractor", _("there is no user named %(name)s") % {"name": name})
    with transaction.atomic():
        req = FootageRequest.objects.select_for_update().get(pk=req.pk)
        _decidable(authority, req)
        first = not req.decisions.exists()
        errors: list[FieldError] = []
        if first:
            days = grant_days or cfg.grant_validity_days
            if not 1 <= days <= cfg.grant_validity_max_days:
                errors.append(
                    FieldError(
                        "grant_days",
                        _("between 1 and %(n)s days") % {"n": cfg.grant_validity_max_days},
                    )
                )
            if req.form == RequestForm.COPY:
                extractor = extractor or _default_extractor()
                if extractor is None or extractor.role != Role.IT_STAFF or not extractor.is_active:
                    errors.append(FieldError("extractor", _("name the IT staff who extracts")))
                outside = is_outside(req.requester)
                if outside and redact is False:
                    errors.append(
                        FieldError(
                            "redact",
                            _("a copy leaving the school must blur the faces of everyone else"),
                        )
                    )
            if errors:
                raise ValidationFailed(errors)
            req.grant_days = days
            if req.form == RequestForm.COPY:
                req.extractor = extractor
                req.redact = req.redact if redact is None else redact
                req.redact_persons = bool(redact_persons) if redact_persons is not None else False
                req.watermark = (
                    bool(watermark) if watermark is not None else is_outside(req.requester)
                )
        now = timezone.now()
        Decision.objects.create(
            request=req,
            decided_by=authority.user,
            on_behalf_of=authority.on_behalf_of,
            verdict=Decision.Verdict.APPROVE,
            reason=(reason or "").strip(),
            decided_at=now,
        )
        approvals = req.decisions.filter(verdict=Decision.Verdict.APPROVE).count()
        if req.replied_at is None:
            req.replied_at = now
        detail: dict[str, Any] = {
            "number": req.number,
            "approval": approvals,
            "of": req.approvals_needed,
        }
        if authority.on_behalf_of is not None:
            detail["on_behalf_of"] = authority.on_behalf_of.get_username()
        if approvals >= req.approvals_needed:
            req.status = RequestStatus.APPROVED
            req.decided_at = now
            grants = _create_grants(actor, req, now)
            detail["grants"] = [g.pk for g in grants]
            if req.form == RequestForm.VIEW:
                req.provided_at = now
            if req.kind == RequestKind.INVESTIGATION:
                from vigil.retention.services import place_hold

                req.hold = place_hold(
                    actor,
                    list(req.cameras.all()),
                    req.footage_start,
                    req.footage_end,
                    f"{req.number}: {req.purpose}",
                    source=req.grant_source,
                )
                detail["hold"] = req.hold.pk
        else:
            req.status = RequestStatus.PARTLY_APPROVED
        req.save()
        record(actor, "request.approve", req, detail=detail)
    return req


def _default_extractor() -> User | None:
    return User.objects.filter(role=Role.IT_STAFF, is_active=True).order_by("pk").first()


def extractors() -> QuerySet[User]:
    return User.objects.filter(role=Role.IT_STAFF, is_active=True).order_by("username")


def _create_grants(actor: Actor, req: FootageRequest, now: datetime) -> list[Grant]:
    until = now + timedelta(days=req.grant_days or _cfg().grant_validity_days)
    cams = list(req.cameras.all())
    wanted: list[tuple[User, list[str]]] = []
    if req.form == RequestForm.VIEW:
        wanted.append((req.requester, [Action.PLAYBACK.value]))
    else:
        wanted.append((req.requester, [Action.DOWNLOAD.value]))
        assert req.extractor is not None
        # IT extracts (Art. 5) and may look at the footage it extracts (to check it,
        # or to pick the face a parent's copy keeps visible).
        wanted.append((req.extractor, [Action.EXPORT.value, Action.PLAYBACK.value]))
    grants = []
    for grantee, actions in wanted:
        grant = Grant.objects.create(
            grantee=grantee,
            actions=",".join(actions),
            footage_start=req.footage_start,
            footage_end=req.footage_end,
            valid_from=now,
            valid_until=until,
            source=req.grant_source,
            reason=f"{req.number}: {req.purpose}"[:2000],
            created_by=actor.user,
        )
        grant.cameras.set(cams)
        record(
            actor,
            "grant.create",
            grant,
            detail={
                "request": req.number,
                "grantee": grantee.get_username(),
                "actions": actions,
                "cameras": sorted(c.code for c in cams),
                "footage_start": req.footage_start.isoformat(),
                "footage_end": req.footage_end.isoformat(),
                "valid_until": until.isoformat(),
            },
        )
        grants.append(grant)
    return grants


def refuse(actor: Actor, req: FootageRequest, reason: str) -> FootageRequest:
    """Refuse, with a reason the requester will read."""
    authority = _authority(actor, require(actor, Action.REQUEST_DECIDE))
    if not (reason or "").strip():
        raise _invalid("reason", _("a refusal must give its reason"))
    with transaction.atomic():
        req = FootageRequest.objects.select_for_update().get(pk=req.pk)
        _decidable(authority, req)
        now = timezone.now()
        Decision.objects.create(
            request=req,
            decided_by=authority.user,
            on_behalf_of=authority.on_behalf_of,
            verdict=Decision.Verdict.REFUSE,
            reason=reason.strip(),
            decided_at=now,
        )
        req.status = RequestStatus.REFUSED
        req.refusal_reason = reason.strip()
        req.decided_at = now
        if req.replied_at is None:
            req.replied_at = now
        req.save()
        detail: dict[str, Any] = {"number": req.number, "reason": req.refusal_reason}
        if authority.on_behalf_of is not None:
            detail["on_behalf_of"] = authority.on_behalf_of.get_username()
        record(actor, "request.refuse", req, detail=detail)
    return req


WITHDRAWABLE = (*OPEN_STATUSES, RequestStatus.APPROVED)


def _is_requester(user: User | None, req: FootageRequest) -> bool:
    return user is not None and user.pk in (req.requester_id, req.filed_by_id)


def may_withdraw(user: User, req: FootageRequest) -> bool:
    """For showing the button; ``withdraw`` checks again."""
    return _is_requester(user, req) and req.status in WITHDRAWABLE


def withdraw(actor: Actor, req: FootageRequest) -> FootageRequest:
    """The requester withdraws: an open request closes, an approved one's grants end."""
    if not _is_requester(actor.user, req):
        raise _refused(
            actor,
            "request.withdraw",
            req,
            _("Only the requester may withdraw a request."),
            {"number": req.number},
        )
    with transaction.atomic():
        req = FootageRequest.objects.select_for_update().get(pk=req.pk)
        if req.status not in WITHDRAWABLE:
            raise _invalid("status", _("this request can no longer be withdrawn"))
        now = timezone.now()
        revoked = []
        for grant in request_grants(req).filter(revoked_at__isnull=True):
            grant.revoked_at = now
            grant.revoked_by = actor.user
            grant.revoke_reason = _("The request was withdrawn.")
            grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
            revoked.append(grant.pk)
        req.status = RequestStatus.WITHDRAWN
        req.withdrawn_at = now
        req.save(update_fields=["status", "withdrawn_at"])
        record(actor, "request.withdraw", req, detail={"number": req.number, "grants": revoked})
    return req


def revoke_grant(actor: Actor, grant: Grant, reason: str) -> Grant:
    """End a grant now, on every path (Art. 4.1)."""
    require(actor, Action.GRANT_REVOKE)
    if not (reason or "").strip():
        raise _invalid("reason", _("say why the grant is revoked"))
    with transaction.atomic():
        grant = Grant.objects.select_for_update().get(pk=grant.pk)
        if grant.revoked_at is not None:
            raise _invalid("grant", _("this grant was already revoked"))
        grant.revoked_at = timezone.now()
        grant.revoked_by = actor.user
        grant.revoke_reason = reason.strip()
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        record(
            actor,
            "grant.revoke",
            grant,
            detail={
                "grantee": grant.grantee.get_username(),
                "source": grant.source,
                "reason": grant.revoke_reason,
            },
        )
    return grant


# ------------------------------------------------------------------------ delegation


def delegate(actor: Actor, to: User, until: datetime, reason: str) -> Delegation:
    """The principal lets ``to`` decide requests on their behalf until ``until``."""
    require(actor, Action.DELEGATE)
    assert actor.user is not None
    errors: list[FieldError] = []
    now = timezone.now()
    if to.pk == actor.user.pk:
        errors.append(FieldError("delegate", _("you cannot delegate to yourself")))
    elif not to.is_active or to.role not in INTERNAL_ROLES:
        errors.append(FieldError("delegate", _("only active members of staff can be delegates")))
    elif to.role in BOARD_ROLES:
        errors.append(FieldError("delegate", _("board members already decide requests")))
    if until <= now:
        errors.append(FieldError("until", _("must be in the future")))
    elif until - now > timedelta(days=90):
        errors.append(FieldError("until", _("a delegation lasts at most 90 days")))
    if not (reason or "").strip():
        errors.append(FieldError("reason", _("say why (e.g. the principal's leave)")))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        d = Delegation.objects.create(
            delegator=actor.user, delegate=to, valid_from=now, valid_until=until, reason=reason
        )
        record(
            actor,
            "delegation.create",
            d,
            detail={"delegate": to.get_username(), "until": until.isoformat(), "reason": reason},
        )
    return d


def end_delegation(actor: Actor, d: Delegation, reason: str) -> Delegation:
    require(actor, Action.DELEGATE)
    with transaction.atomic():
        d = Delegation.objects.select_for_update().get(pk=d.pk)
        if d.revoked_at is not None:
            raise _invalid("delegation", _("this delegation has already ended"))
        d.revoked_at = timezone.now()
        d.revoked_by = actor.user
        d.revoke_reason = (reason or "").strip()
        d.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        record(actor, "delegation.end", d, detail={"reason": d.revoke_reason})
    return d


# ------------------------------------------------------------------------ extraction


def request_ranges(req: FootageRequest) -> list[FootageRange]:
    """The footage a request covers, per camera (what its extraction reads)."""
    return [
        FootageRange(c, req.footage_start, req.footage_end) for c in req.cameras.order_by("code")
    ]


def export_grant(actor: Actor, req: FootageRequest) -> Grant:
    """Authorise the extraction of every camera of the request (audited per camera) and
    return the one grant that covers it: a job is bound to it."""
    grant_ids = set()
    for rng in request_ranges(req):
        decision = require(actor, Action.EXPORT, rng)
        grant_ids.add(decision.grant_id)
    if len(grant_ids) != 1 or None in grant_ids:
        raise AccessDenied(
            AuthzDecision(False, _("No single access grant covers this extraction."), via="none")
        )
    grant = Grant.objects.get(pk=grant_ids.pop())
    if grant.source != req.grant_source:
        raise AccessDenied(
            AuthzDecision(False, _("The grant belongs to another request."), via="none")
        )
    return grant


def _exportable(req: FootageRequest) -> bool:
    return req.status == RequestStatus.APPROVED and req.form == RequestForm.COPY


def may_export(user: User, req: FootageRequest) -> bool:
    """For showing the extraction form; ``create_export`` asks again (and audits)."""
    ranges = request_ranges(req)
    return (
        _exportable(req)
        and bool(ranges)
        and all(decide(user, Action.EXPORT, r).allowed for r in ranges)
    )


def create_export(
    actor: Actor, req: FootageRequest, *, keep: list[list[float]] | None = None
) -> ExportJob:
    """Queue the extraction of an approved copy request (IT, under its grant)."""
    # The permission first (audited per camera, before the transaction): an unapproved
    # request has no grant, and the attempt is on record.
    grant = export_grant(actor, req)
    if not _exportable(req):
        raise _invalid("request", _("only an approved request for a copy is extracted"))
    keep = [list(map(float, k)) for k in (keep or [])][:8]
    if any(len(k) != 3 or not (0 <= k[1] <= 1 and 0 <= k[2] <= 1 and k[0] >= 0) for k in keep):
        raise _invalid("keep", _("a face to keep is given as seconds, x and y (0 to 1)"))
    with transaction.atomic():
        if req.exports.filter(state__in=(JobState.QUEUED, JobState.RUNNING)).exists():
            raise _invalid("request", _("an extraction of this request is already under way"))
        job = ExportJob.objects.create(
            request=req,
            grant=grant,
            created_by=actor.user,
            options={
                "redact": req.redact,
                "persons": req.redact_persons,
                "watermark": req.watermark,
                "keep": keep,
            },
            stage=_("Waiting for the export worker"),
        )
        record(
            actor,
            "export.create",
            job,
            detail={"request": req.number, "grant": grant.pk, "options": job.options},
        )
    return job


def retry_export(actor: Actor, job: ExportJob) -> ExportJob:
    """Queue a failed or cancelled job again (its finished clips are reused)."""
    if export_grant(actor, job.request).pk != job.grant_id:
        raise _invalid("job", _("this extraction's grant has been replaced: start a new one"))
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job.pk)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise _invalid("job", _("only a failed or cancelled extraction can be retried"))
        job.state = JobState.QUEUED
        job.error = ""
        job.stage = _("Waiting for the export worker")
        job.lease_owner = ""
        job.lease_until = None
        job.save(update_fields=["state", "error", "stage", "lease_owner", "lease_until"])
        record(actor, "export.retry", job, detail={"request": job.request.number})
    return job


def cancel_export(actor: Actor, job: ExportJob) -> ExportJob:
    """Stop a queued or running job (the worker notices at its next progress step)."""
    user = actor.user
    if user is None or not (user.pk == job.created_by_id or can(user, Action.GRANT_REVOKE)):
        raise _refused(
            actor,
            "export.cancel",
            job,
            _("Only who started it or the board may stop it."),
            {"request": job.request.number},
        )
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job.pk)
        if not job.active:
            raise _invalid("job", _("this extraction is not running"))
        job.state = JobState.CANCELLED
        job.finished_at = timezone.now()
        job.stage = _("Stopped: cancelled")
        job.save(update_fields=["state", "finished_at", "stage"])
        record(actor, "export.cancel", job, detail={"request": job.request.number})
    return job


# -------------------------------------------------------------------------- packages


def package_dir(package: Package) -> Path:
    return Path(settings.PATHS.exports) / package.name


def _package_clips(package: Package) -> dict[str, FootageRange]:
    """The clips of a package (their file in the package, ``data/...``) and the footage
    each holds, from its signed manifest. Only cameras of the package's request count:
    a clip naming any other camera is not footage this package may serve."""
    import json

    manifest = json.loads(package.manifest)
    cams = {c.code: c for c in package.request.cameras.all()}
    out: dict[str, FootageRange] = {}
    for clip in manifest.get("clips", []):
        camera = cams.get(clip["camera"])
        if camera is None:
            continue
        out[clip["file"]] = FootageRange(
            camera,
            datetime.fromisoformat(clip["start_utc"]),
            datetime.fromisoformat(clip["end_utc"]),
        )
    return out


def package_ranges(package: Package) -> list[FootageRange]:
    """The footage a package holds, per camera (from its signed manifest)."""
    return list(_package_clips(package).values())


# A player fetches a clip in many range requests: the first of a session (and again
# after this many seconds) is audited, the others only decided; a refusal always is.
AUDIT_MEDIA_AGAIN = 600.0


@dataclass(frozen=True)
class PackageMedia:
    """A clip of a package the actor may play now: the file to stream and its size."""

    path: Path
    size: int


def open_package_media(
    actor: Actor, session: MutableMapping[str, Any], package: Package, name: str
) -> PackageMedia | None:
    """Open the clip ``data/<name>`` of a package to play inline (the package media URL).

    None when the package holds no such clip (of a camera of its request, on disk).
    Playback is asked of the permission service on every call; ``session`` (the
    caller's session) remembers when it was last audited, so that the many range
    requests of one player are audited once per AUDIT_MEDIA_AGAIN. Refusals are always
    audited and raise AccessDenied."""
    rng = _package_clips(package).get(f"data/{name}")
    path = package_dir(package) / "data" / name
    if rng is None or not path.is_file():
        return None
    seen_key = f"access.media.{package.pk}.{name}"
    seen = session.get(seen_key)
    audited = seen is not None and time.time() - float(seen) < AUDIT_MEDIA_AGAIN
    decision = (
        decide(actor.user, Action.PLAYBACK, rng)
        if audited
        else authorize(actor, Action.PLAYBACK, rng)
    )
    if not decision.allowed:
        if audited:
            decision = authorize(actor, Action.PLAYBACK, rng)  # audit the refusal
        raise AccessDenied(decision)
    if not audited:
        session[seen_key] = time.time()
    return PackageMedia(path, path.stat().st_size)


def may_download(user: User, package: Package) -> bool:
    """For showing the link; the download itself asks ``authorize`` again."""
    ranges = package_ranges(package)
    return bool(ranges) and all(decide(user, Action.DOWNLOAD, r).allowed for r in ranges)


def _authorize_download(actor: Actor, package: Package) -> None:
    ranges = package_ranges(package)
    if not ranges:
        raise AccessDenied(AuthzDecision(False, _("This package holds no footage."), via="none"))
    for r in ranges:
        require(actor, Action.DOWNLOAD, r)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def create_download_link(actor: Actor, package: Package) -> tuple[DownloadLink, str]:
    """A link for the actor alone, valid ``[access] download_link_minutes``, used once."""
    _authorize_download(actor, package)  # audited per camera, before the transaction
    assert actor.user is not None
    with transaction.atomic():
        token = secrets.token_urlsafe(32)
        link = DownloadLink.objects.create(
            package=package,
            user=actor.user,
            token_hash=_token_hash(token),
            expires_at=timezone.now() + timedelta(minutes=_cfg().download_link_minutes),
        )
        record(
            actor,
            "package.link",
            package,
            detail={"link": link.pk, "expires_at": link.expires_at.isoformat()},
        )
    return link, token


@dataclass
class Download:
    package: Package
    root: Path
    names: list[str]
    size: int

    @property
    def filename(self) -> str:
        return f"{self.package.name}.zip"

    def chunks(self) -> Iterator[bytes]:
        return pkg.zip_stream(self.root, self.package.name, self.names)


def _link_problem(actor: Actor, link: DownloadLink | None, now: datetime) -> str:
    if link is None:
        return _("This download link is not valid.")
    if actor.user is None or actor.user.pk != link.user_id:
        return _("This download link was made for someone else.")
    if link.used_at is not None:
        return _("This download link has already been used. Ask for a new one.")
    if link.expires_at <= now:
        return _("This download link has expired. Ask for a new one.")
    return ""


def _refuse_download(actor: Actor, link: DownloadLink | None, reason: str) -> AccessDenied:
    package = link.package if link else None
    return _refused(actor, "package.download", package, reason, {"link": link.pk if link else None})


def open_download(actor: Actor, token: str) -> Download:
    """Use a download link: checks it (owner, expiry, not used), asks the permission
    service again for every camera, records the download in the package's custody log
    and the audit log, and returns the .zip to stream. Refusals are audited."""
    links = DownloadLink.objects.select_related("package", "package__request")
    link = links.filter(token_hash=_token_hash(token)).first()
    reason = _link_problem(actor, link, timezone.now())
    if reason:
        raise _refuse_download(actor, link, reason)
    assert link is not None
    package = link.package
    _authorize_download(actor, package)  # the grant may have ended since the link was made
    with transaction.atomic():
        now = timezone.now()
        link = links.select_for_update().get(pk=link.pk)
        reason = _link_problem(actor, link, now)
        if not reason:
            link.used_at = now
            link.save(update_fields=["used_at"])
            entry = add_custody(
                package,
                "downloaded",
                actor,
                {"link": link.pk, "ip": actor.ip or "", "via": actor.via},
                at=now,
            )
            root = package_dir(package)
            names = pkg.package_files(root)
            record(
                actor,
                "package.download",
                package,
                detail={"link": link.pk, "custody_seq": entry.seq, "files": len(names)},
            )
    if reason:  # used by a parallel request in the meantime
        raise _refuse_download(actor, link, reason)
    return Download(package, root, names, pkg.zip_size(root, package.name, names))


def add_custody(
    package: Package,
    event: str,
    actor: Actor,
    detail: dict[str, Any],
    *,
    at: datetime | None = None,
    root: Path | None = None,
) -> CustodyEntry:
    """Append a signed entry to the package's custody log, on disk and in the database
    (call inside the transaction of the event; the package row is locked)."""
    from vigil.core.keys import sign

    Package.objects.select_for_update().filter(pk=package.pk).first()
    last = package.custody.order_by("-seq").first()
    prev = last.entry_hash if last else hashlib.sha256(package.manifest.encode()).hexdigest()
    seq = (last.seq if last else 0) + 1
    when = at or timezone.now()
    line, digest = pkg.custody_line(
        seq=seq,
        prev=prev,
        at=when.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z"),
        event=event,
        actor=f"{actor.username} ({actor.role or actor.via})",
        detail=detail,
        sign=sign,
    )
    entry = CustodyEntry.objects.create(
        package=package,
        seq=seq,
        line=line,
        entry_hash=digest,
        event=event,
        actor_username=actor.username[:150],
        at=when,
    )
    pkg.append_custody(root or package_dir(package), line)
    return entry


def site_record(package: Package | None, *, exact: bool = False) -> pkg.SiteRecord:
    from vigil.core.keys import fingerprint, key_path

    if package is None:  # (never create a site key just to compare with it)
        return pkg.SiteRecord(fingerprint=fingerprint() if key_path().exists() else None)
    return pkg.SiteRecord(
        fingerprint=fingerprint(),
        manifest=package.manifest.encode(),
        custody=[c.line for c in package.custody.order_by("seq")],
        exact_custody=exact,
    )


def verify_on_site(path: Path) -> pkg.Report:
    """Verify a package file or directory against the site's key and records."""
    name = pkg.package_name(path)
    package = Package.objects.filter(name=name).first() if name else None
    if package is None:
        return pkg.verify(path, site_record(None))
    exact = path.resolve() == package_dir(package).resolve()
    return pkg.verify(path, site_record(package, exact=exact))


def may_verify(user: User) -> bool:
    """For showing the check of the site's packages; ``verify_package`` asks again."""
    return can(user, Action.REQUEST_VIEW_ALL)


def verify_package(actor: Actor, package: Package) -> pkg.Report:
    """Verify the site's own copy of a package (its directory) and audit the check (for
    those who see every request: the board and IT)."""
    require(actor, Action.REQUEST_VIEW_ALL)
    report = pkg.verify(package_dir(package), site_record(package, exact=True))
    with transaction.atomic():
        record(
            actor,
            "package.verify",
            package,
            detail={"valid": report.ok, "problems": [str(p) for p in report.problems][:20]},
        )
    return report
