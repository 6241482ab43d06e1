"""Filing and deciding requests: kinds per role, deadlines, one or two approvals, the
grants an approval creates, delegation, the investigation's hold, withdrawal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from django.utils import timezone

from vigil.access import deadlines, services
from vigil.access.models import Decision, FootageRequest, RequestStatus
from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.authz.models import Grant
from vigil.authz.rules import Action
from vigil.authz.services import AccessDenied, FootageRange, decide
from vigil.retention.models import Hold
from vigil.retention.services import is_held
from vigil.school.models import Camera
from vigil.school.validation import ValidationFailed

pytestmark = pytest.mark.django_db
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def as_(users, name):  # type: ignore[no-untyped-def]
    return Actor(user=users[name])


def cam(code: str = "CAM-010") -> Camera:
    return Camera.objects.get(code=code)


def file(users, who="phuhuynh", kind="guardian", form="copy", **kw):  # type: ignore[no-untyped-def]
    now = timezone.now()
    fields = {
        "kind": kind,
        "form": form,
        "purpose": "Xem lại giờ đón trẻ chiều thứ Hai",
        "cameras": [cam()],
        "start": now - timedelta(hours=3),
        "end": now - timedelta(hours=2),
        "subject": "Bé An, lớp C2",
        **kw,
    }
    return services.file_request(as_(users, who), **fields)


# ------------------------------------------------------------------------- deadlines


def test_working_days_skip_weekends_and_holidays() -> None:
    friday = datetime(2026, 4, 24, 15, 0, tzinfo=HCM)  # a Friday afternoon
    due = deadlines.working_days_after(friday, 2, set(), HCM)
    assert due.date() == date(2026, 4, 28)  # Monday, Tuesday
    # 2026-04-30 and 05-01 are public holidays: Wednesday's request runs to Monday
    wednesday = datetime(2026, 4, 29, 9, 0, tzinfo=HCM)
    holidays = {date(2026, 4, 30), date(2026, 5, 1)}
    assert deadlines.working_days_after(wednesday, 2, holidays, HCM).date() == date(2026, 5, 5)
    assert deadlines.days_after(wednesday, 10, HCM).date() == date(2026, 5, 9)
    # received late at night UTC is already the next day in Hà Nội
    late = datetime(2026, 4, 23, 18, 30, tzinfo=UTC)  # Fri 01:30 local
    assert deadlines.working_days_after(late, 2, set(), HCM).date() == date(2026, 4, 28)
    assert due.hour == 23 and due.minute == 59


def test_deadline_states() -> None:
    due = datetime(2026, 4, 28, 23, 59, tzinfo=HCM)
    before, after = due - timedelta(hours=1), due + timedelta(hours=1)
    assert deadlines.state_of(due, None, before, void=False).state == "pending"
    assert deadlines.state_of(due, None, after, void=False).state == "overdue"
    assert deadlines.state_of(due, before, after, void=False).state == "met"
    assert deadlines.state_of(due, after, after, void=False).state == "late"
    assert deadlines.state_of(due, None, after, void=True).state == "void"


@override_settings()
def test_a_parents_request_carries_the_legal_deadlines(users, settings) -> None:  # type: ignore[no-untyped-def]
    settings.VIGIL = settings.VIGIL.model_copy(
        update={"access": settings.VIGIL.access.model_copy(update={"holidays": []})}
    )
    req = file(users)
    received = req.submitted_at.astimezone(HCM)
    assert req.reply_due == deadlines.working_days_after(received, 2, set(), HCM)
    assert req.access_due is not None
    assert req.access_due.astimezone(HCM).date() == received.date() + timedelta(days=10)
    other = file(users, who="totruongbv", kind="investigation", form="view")
    assert other.reply_due is None and other.access_due is None
    services.refuse(as_(users, "hieutruong"), req, "Không xác định được thời điểm.")
    req.refresh_from_db()
    assert req.replied_at is not None and req.replied_at <= req.reply_due


# ---------------------------------------------------------------------------- filing


def test_each_role_files_its_own_kinds(users) -> None:  # type: ignore[no-untyped-def]
    assert file(users).number.startswith("YC-")
    with pytest.raises(ValidationFailed, match="kind"):
        file(users, kind="investigation")  # a parent does not investigate
    with pytest.raises(ValidationFailed, match="kind"):
        file(users, who="nghiencuu", kind="guardian")
    assert file(users, who="nghiencuu", kind="outside_party").kind == "outside_party"
    assert file(users, who="giaovien", kind="complaint", form="view").kind == "complaint"
    review = file(users, who="totruongmg", kind="internal_review", form="view")
    assert review.department is not None and review.department.code == "MG"
    with pytest.raises(AccessDenied):
        file(users, who="kythuat", kind="complaint")  # suppliers file nothing


def test_filing_checks_every_field(users) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    with pytest.raises(ValidationFailed) as exc:
        services.file_request(
            as_(users, "phuhuynh"),
            kind="guardian",
            form="copy",
            purpose="x",
            cameras=[],
            start=now + timedelta(hours=1),
            end=now + timedelta(hours=2),
        )
    fields = {e.field for e in exc.value.errors}
    assert fields == {"purpose", "cameras", "start", "subject"}
    with pytest.raises(ValidationFailed) as exc:
        file(users, start=now - timedelta(days=9), end=now - timedelta(days=1))
    assert [e.field for e in exc.value.errors] == ["end"]  # at most 7 days
    with pytest.raises(ValidationFailed) as exc:
        file(users, start=now - timedelta(hours=1), end=now - timedelta(hours=2))
    assert [e.field for e in exc.value.errors] == ["end"]  # must be after the start


def test_numbers_count_up_per_year_and_filing_is_audited(users) -> None:  # type: ignore[no-untyped-def]
    a, b = file(users), file(users)
    year = timezone.localtime().year
    assert (a.number, b.number) == (f"YC-{year}-0001", f"YC-{year}-0002")
    entry = AuditEntry.objects.filter(action="request.file").latest("seq")
    assert entry.detail["number"] == b.number
    assert entry.detail["cameras"] == ["CAM-010"]


def test_board_files_a_paper_request_on_a_parents_behalf(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="phohieutruong", requester=users["phuhuynh"])
    assert req.requester == users["phuhuynh"] and req.filed_by == users["phohieutruong"]
    with pytest.raises(AccessDenied):
        file(users, who="giaovien", kind="complaint", requester=users["phuhuynh"])


# ---------------------------------------------------------------------------- deciding


def test_copy_for_a_parent_needs_two_different_board_members(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users)
    assert req.approvals_needed == 2 and req.redact
    req = services.approve(as_(users, "hieutruong"), req, grant_days=5)
    assert req.status == RequestStatus.PARTLY_APPROVED
    assert not Grant.objects.filter(source=req.grant_source).exists()
    with pytest.raises(ValidationFailed, match="already approved"):
        services.approve(as_(users, "hieutruong"), req)
    req = services.approve(as_(users, "phohieutruong"), req)
    assert req.status == RequestStatus.APPROVED
    grants = {g.grantee.username: g for g in Grant.objects.filter(source=req.grant_source)}
    assert set(grants) == {"phuhuynh", "admin"}
    parent, it = grants["phuhuynh"], grants["admin"]
    assert parent.action_list == ["footage.download"]
    assert sorted(it.action_list) == ["footage.export", "footage.playback"]
    for g in (parent, it):
        assert list(g.cameras.values_list("code", flat=True)) == ["CAM-010"]
        assert (g.footage_start, g.footage_end) == (req.footage_start, req.footage_end)
        assert g.valid_until - g.valid_from == timedelta(days=5)
    inside = FootageRange(cam(), req.footage_start, req.footage_end)
    assert decide(users["phuhuynh"], Action.DOWNLOAD, inside).allowed
    assert not decide(users["phuhuynh"], Action.PLAYBACK, inside).allowed
    assert decide(users["admin"], Action.EXPORT, inside).allowed


def test_an_unknown_extractor_is_refused_not_replaced_by_the_default(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users)
    with pytest.raises(ValidationFailed, match="no user named nobody") as exc:
        services.approve(as_(users, "hieutruong"), req, extractor="nobody")
    assert [e.field for e in exc.value.errors] == ["extractor"]
    req = FootageRequest.objects.get(pk=req.pk)
    assert req.status == RequestStatus.SUBMITTED and req.extractor is None
    assert not req.decisions.exists()
    with pytest.raises(ValidationFailed, match="IT staff"):  # known, but not IT staff
        services.approve(as_(users, "hieutruong"), req, extractor="giaovien")
    req = services.approve(as_(users, "hieutruong"), req, extractor="admin")
    assert req.extractor == users["admin"]


def test_no_one_decides_their_own_request(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="phohieutruong", kind="investigation", form="view")
    with pytest.raises(ValidationFailed, match="own request"):
        services.approve(as_(users, "phohieutruong"), req)
    assert services.approve(as_(users, "hieutruong"), req).status == RequestStatus.APPROVED


def test_only_the_board_decides(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users)
    for name in ("admin", "totruongbv", "phuhuynh", "giaovien"):
        with pytest.raises(AccessDenied):
            services.approve(as_(users, name), req)
        with pytest.raises(AccessDenied):
            services.refuse(as_(users, name), req, "no")
    assert AuditEntry.objects.filter(action="request.decide", outcome="denied").count() == 8


def test_a_refusal_gives_its_reason_to_the_requester(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users)
    with pytest.raises(ValidationFailed, match="reason"):
        services.refuse(as_(users, "hieutruong"), req, "  ")
    req = services.refuse(as_(users, "hieutruong"), req, "Khung giờ không có trẻ của anh/chị.")
    assert req.status == RequestStatus.REFUSED
    assert req.refusal_reason == "Khung giờ không có trẻ của anh/chị."
    with pytest.raises(ValidationFailed, match="already been decided"):
        services.approve(as_(users, "phohieutruong"), req)


def test_internal_view_needs_one_approval_and_gives_playback_only(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="totruongmg", kind="internal_review", form="view")
    assert req.approvals_needed == 1 and not req.redact
    req = services.approve(as_(users, "phohieutruong"), req)
    assert req.status == RequestStatus.APPROVED and req.provided_at is not None
    (grant,) = Grant.objects.filter(source=req.grant_source)
    assert grant.grantee == users["totruongmg"] and grant.action_list == ["footage.playback"]


def test_outside_party_always_needs_two(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="nghiencuu", kind="outside_party", form="view")
    assert req.approvals_needed == 2


def test_two_person_approval_can_be_turned_off(users, settings) -> None:  # type: ignore[no-untyped-def]
    access = settings.VIGIL.access.model_copy(
        update={"two_person_approval_copies": False, "two_person_approval_outside": False}
    )
    settings.VIGIL = settings.VIGIL.model_copy(update={"access": access})
    assert file(users).approvals_needed == 1
    assert file(users, who="nghiencuu", kind="outside_party").approvals_needed == 1


def test_copies_leaving_the_school_cannot_skip_redaction(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users)
    with pytest.raises(ValidationFailed, match="blur"):
        services.approve(as_(users, "hieutruong"), req, redact=False)
    staff = file(users, who="giaovien", kind="complaint")
    assert not staff.redact  # stays inside the school
    services.approve(as_(users, "hieutruong"), staff, redact=False)


def test_investigation_places_an_evidence_hold(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="totruongbv", kind="investigation", form="copy", subject="Vỡ kính")
    assert not is_held(cam(), req.footage_start, req.footage_end)
    req = services.approve(as_(users, "hieutruong"), req)
    assert req.hold is not None
    hold = Hold.objects.get(pk=req.hold.pk)
    assert hold.source == req.grant_source
    assert (hold.start, hold.end) == (req.footage_start, req.footage_end)
    assert is_held(cam(), req.footage_start, req.footage_end)


def test_withdrawal_ends_the_grants(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="totruongmg", kind="internal_review", form="view")
    req = services.approve(as_(users, "hieutruong"), req)
    inside = FootageRange(cam(), req.footage_start, req.footage_end)
    assert decide(users["totruongmg"], Action.PLAYBACK, inside).allowed
    with pytest.raises(AccessDenied):
        services.withdraw(as_(users, "phuhuynh"), req)
    refusal = AuditEntry.objects.get(action="request.withdraw", outcome="denied")
    assert refusal.actor_username == "phuhuynh" and refusal.detail["number"] == req.number
    assert FootageRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED
    services.withdraw(as_(users, "totruongmg"), req)
    assert not decide(users["totruongmg"], Action.PLAYBACK, inside).allowed


def test_revoking_a_grant_takes_effect_at_once(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="totruongmg", kind="internal_review", form="view")
    services.approve(as_(users, "hieutruong"), req)
    grant = Grant.objects.get(source=req.grant_source)
    inside = FootageRange(cam(), req.footage_start, req.footage_end)
    with pytest.raises(AccessDenied):
        services.revoke_grant(as_(users, "admin"), grant, "no")
    with pytest.raises(ValidationFailed):
        services.revoke_grant(as_(users, "hieutruong"), grant, "")
    services.revoke_grant(as_(users, "hieutruong"), grant, "Hết thời hạn điều tra")
    assert not decide(users["totruongmg"], Action.PLAYBACK, inside).allowed
    entry = AuditEntry.objects.filter(action="grant.revoke").latest("seq")
    assert entry.detail["reason"] == "Hết thời hạn điều tra"


# -------------------------------------------------------------------------- delegation


def test_the_principal_delegates_deciding_to_the_security_head(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="giaovien", kind="complaint", form="view")
    with pytest.raises(AccessDenied):
        services.approve(as_(users, "totruongbv"), req)
    until = timezone.now() + timedelta(days=3)
    with pytest.raises(AccessDenied):
        services.delegate(as_(users, "phohieutruong"), users["totruongbv"], until, "nghỉ phép")
    with pytest.raises(ValidationFailed, match="already decide"):
        services.delegate(as_(users, "hieutruong"), users["phohieutruong"], until, "nghỉ phép")
    d = services.delegate(
        as_(users, "hieutruong"), users["totruongbv"], until, "Hiệu trưởng đi công tác"
    )
    assert decide(users["totruongbv"], Action.REQUEST_DECIDE).via == "delegation"
    req = services.approve(as_(users, "totruongbv"), req)
    decision = Decision.objects.get(request=req)
    assert decision.on_behalf_of == users["hieutruong"]
    assert (
        AuditEntry.objects.filter(action="request.approve").latest("seq").detail["on_behalf_of"]
        == "hieutruong"
    )
    services.end_delegation(as_(users, "hieutruong"), d, "đã về")
    assert not decide(users["totruongbv"], Action.REQUEST_DECIDE).allowed


def test_a_delegate_and_the_principal_are_one_authority(users) -> None:  # type: ignore[no-untyped-def]
    until = timezone.now() + timedelta(days=3)
    services.delegate(as_(users, "hieutruong"), users["totruongbv"], until, "công tác")
    req = file(users)  # needs two approvals
    assert services.may_decide(users["totruongbv"], req)
    services.approve(as_(users, "hieutruong"), req)
    # the decision form is not offered to the same authority again, nor to the principal
    assert not services.may_decide(users["totruongbv"], req)
    assert not services.may_decide(users["hieutruong"], req)
    assert services.may_decide(users["phohieutruong"], req)
    with pytest.raises(ValidationFailed, match="same authority"):
        services.approve(as_(users, "totruongbv"), FootageRequest.objects.get(pk=req.pk))
    assert services.approve(as_(users, "phohieutruong"), req).status == RequestStatus.APPROVED


def test_the_authority_is_the_delegation_that_allowed_the_decision(users) -> None:  # type: ignore[no-untyped-def]
    until = timezone.now() + timedelta(days=3)
    d = services.delegate(as_(users, "hieutruong"), users["totruongbv"], until, "công tác")
    actor = as_(users, "totruongbv")
    decision = decide(users["totruongbv"], Action.REQUEST_DECIDE)
    assert decision.via == "delegation"
    services.end_delegation(as_(users, "hieutruong"), d, "đã về")  # ends in between
    authority = services._authority(actor, decision)
    assert authority.on_behalf_of == users["hieutruong"]
    assert authority.key == users["hieutruong"].pk


def test_a_delegation_expires_and_dies_with_its_author(users) -> None:  # type: ignore[no-untyped-def]
    until = timezone.now() + timedelta(days=3)
    d = services.delegate(as_(users, "hieutruong"), users["totruongbv"], until, "công tác")
    d.valid_until = timezone.now() - timedelta(seconds=1)
    d.valid_from = timezone.now() - timedelta(days=1)
    d.save()
    assert not decide(users["totruongbv"], Action.REQUEST_DECIDE).allowed
    d.valid_until = until
    d.save()
    assert decide(users["totruongbv"], Action.REQUEST_DECIDE).allowed
    principal = users["hieutruong"]
    principal.role = "board"  # no longer the principal: the delegation lapses
    principal.save()
    assert not decide(users["totruongbv"], Action.REQUEST_DECIDE).allowed


def test_listing_requests(users) -> None:  # type: ignore[no-untyped-def]
    mine = file(users)
    other = file(users, who="giaovien", kind="complaint", form="view")
    services.refuse(as_(users, "hieutruong"), other, "Không cần thiết")
    board = as_(users, "hieutruong")
    assert set(services.list_requests(board)) == {mine, other}
    assert set(services.list_requests(board, state="open")) == {mine}
    assert set(services.list_requests(board, state="refused")) == {other}
    assert set(services.list_requests(board, kind="guardian")) == {mine}
    assert set(services.list_requests(as_(users, "phuhuynh"))) == {mine}
    with pytest.raises(AccessDenied):  # neither sees all requests nor may file one
        services.list_requests(Actor(user=None))


def test_who_may_withdraw_and_extract(users) -> None:  # type: ignore[no-untyped-def]
    req = file(users, who="giaovien", kind="complaint")
    assert services.may_withdraw(users["giaovien"], req)
    assert not services.may_withdraw(users["hieutruong"], req)
    assert not services.may_export(users["admin"], req)  # not approved yet
    req = services.approve(as_(users, "hieutruong"), req)
    assert services.may_export(users["admin"], req)
    assert not services.may_export(users["giaovien"], req)
    services.withdraw(as_(users, "giaovien"), req)
    req.refresh_from_db()
    assert not services.may_withdraw(users["giaovien"], req)
    assert not services.may_export(users["admin"], req)


def test_what_each_role_sees(users) -> None:  # type: ignore[no-untyped-def]
    mine = file(users)
    other = file(users, who="giaovien", kind="complaint", form="view")
    seen = lambda name: set(services.visible_requests(users[name]))  # noqa: E731
    assert seen("phuhuynh") == {mine}
    assert seen("giaovien") == {other}
    assert seen("hieutruong") == {mine, other}
    assert seen("admin") == {mine, other}  # IT sees all requests (Art. 5)
    assert seen("nghiencuu") == set()
