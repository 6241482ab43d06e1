"""The retention panel on the camera page: policy in force, oldest footage, holds, and the
camera's own policy form for those who manage the site."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from vigil.authz.rules import Action
from vigil.authz.services import can
from vigil.recording.models import Segment
from vigil.retention import policy
from vigil.retention.models import CameraPolicy, Hold
from vigil.school.models import Camera


def camera_panels(request: HttpRequest, camera: Camera) -> list[dict[str, Any]]:
    if not can(request.user, Action.STORAGE_VIEW):  # type: ignore[arg-type]
        return []
    from vigil.retention.views import PolicyForm

    own = CameraPolicy.objects.filter(camera=camera).first()
    effective = policy.effective(camera.pk)
    labels = {
        "regulation": _("the regulation"),
        "site": _("site policy"),
        "camera": _("this camera"),
    }
    return [
        {
            "template": "retention/_camera_panel.html",
            "camera": camera,
            "effective": effective,
            "floor_source": labels.get(effective.floor_source, effective.floor_source),
            "oldest": Segment.objects.filter(camera=camera)
            .order_by("start")
            .values_list("start", flat=True)
            .first(),
            "holds": list(Hold.objects.active().filter(cameras=camera).order_by("start")),
            "can_manage": can(request.user, Action.SITE_MANAGE),  # type: ignore[arg-type]
            "form": PolicyForm(
                initial={
                    "floor_days": own.floor_days if own else None,
                    "ceiling_days": own.ceiling_days if own else None,
                }
            ),
        }
    ]
