from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

PREFIX = "me"
router = Router(tags=["me"])


class MeOut(Schema):
    username: str
    full_name: str
    role: str
    department: str | None
    two_factor: bool


@router.get("", response=MeOut)
def me(request: HttpRequest) -> MeOut:
    user = request.user
    return MeOut(
        username=user.username,
        full_name=user.full_name,  # type: ignore[union-attr]
        role=user.role,  # type: ignore[union-attr]
        department=user.department.code if user.department else None,  # type: ignore[union-attr]
        two_factor=user.is_verified(),  # type: ignore[union-attr]
    )
