"""The audit search page, for the principal and the board."""

from __future__ import annotations

from datetime import datetime, time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from vigil.accounts.actor import Actor
from vigil.audit import services
from vigil.audit.models import AuditEntry, Outcome
from vigil.authz.rules import Action
from vigil.authz.services import require


def _day(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value).date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


@login_required
def search(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.AUDIT_VIEW)
    f = request.GET
    qs = AuditEntry.objects.all()
    if f.get("actor"):
        qs = qs.filter(actor_username__icontains=f["actor"].strip())
    if f.get("action"):
        qs = qs.filter(action__startswith=f["action"].strip())
    if f.get("object"):
        term = f["object"].strip()
        qs = qs.filter(object_repr__icontains=term) | qs.filter(object_id=term)
    if f.get("outcome"):
        qs = qs.filter(outcome=f["outcome"])
    start, end = _day(f.get("from")), _day(f.get("to"), end=True)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lte=end)
    page = Paginator(qs.order_by("-seq"), 50).get_page(f.get("page"))
    if f:
        with transaction.atomic():
            services.record(
                actor, "audit.search", None, detail={k: v for k, v in f.items() if k != "page"}
            )
    return render(
        request,
        "audit/search.html",
        {
            "page": page,
            "filters": f,
            "outcomes": Outcome.choices,
            "verify": request.session.pop("audit_verify", None),
        },
    )


@require_POST
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    require(actor, Action.AUDIT_VIEW)
    result = services.verify()
    with transaction.atomic():
        services.record(
            actor,
            "audit.verify",
            None,
            outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
            detail={"entries": result.entries, "problems": [str(p) for p in result.problems[:20]]},
        )
    if result.ok:
        messages.success(
            request, _("The audit chain is intact (%(n)s entries).") % {"n": result.entries}
        )
    else:
        messages.error(
            request,
            _("The audit chain is broken: %(p)s")
            % {"p": "; ".join(str(p) for p in result.problems[:5])},
        )
    return redirect("audit:search")
