from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from vigil.core.dashboard import extra_cards, summary


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {"summary": summary(user), "extra_cards": extra_cards(user)}  # type: ignore[arg-type]
    return render(request, "core/dashboard.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for supervisors and load balancers; reveals nothing about footage."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
