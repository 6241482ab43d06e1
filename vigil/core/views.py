from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from vigil.core.dashboard import summary


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "core/dashboard.html", {"summary": summary(request.user)})  # type: ignore[arg-type]


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for supervisors and load balancers; reveals nothing about footage."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
