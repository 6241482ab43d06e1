from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from vigil.core.nav import menus_for


def shell(request: HttpRequest) -> dict[str, Any]:
    from vigil.school.models import School

    user = getattr(request, "user", None)
    main, menus = menus_for(user) if user is not None and user.is_authenticated else ([], [])
    return {
        "vigil_school": School.objects.only("name", "short_name", "is_demo").first(),
        "vigil_nav": main,
        "vigil_menus": menus,
    }
