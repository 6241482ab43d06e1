"""The effective retention policy: the regulation's floor from the configuration, the
site's policy, and each camera's own values (reads only; changes go through services).

Rules:
* the configured ``[retention] floor_days`` is the regulation's floor (Art. 5); the site
  policy may raise it, never lower it;
* a camera may raise its floor above the site's, never lower it;
* a ceiling (delete footage older than this) is optional, per site or per camera, and is
  never below the floor that applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from vigil.retention.models import CameraPolicy, SitePolicy


@dataclass(frozen=True)
class Effective:
    floor_days: int
    ceiling_days: int | None
    floor_source: str  # "regulation", "site", "camera"
    ceiling_source: str  # "", "site", "camera"


def regulation_floor() -> int:
    return int(settings.VIGIL.retention.floor_days)


def site_policy() -> SitePolicy:
    policy = SitePolicy.objects.filter(pk=1).first()
    return policy or SitePolicy(pk=1)


def site_effective(policy: SitePolicy | None = None) -> Effective:
    policy = policy or site_policy()
    floor, source = regulation_floor(), "regulation"
    if policy.floor_days and policy.floor_days > floor:
        floor, source = policy.floor_days, "site"
    ceiling = policy.ceiling_days
    if ceiling is not None:
        ceiling = max(ceiling, floor)
    return Effective(floor, ceiling, source, "site" if ceiling else "")


def combine(site: Effective, camera: CameraPolicy | None) -> Effective:
    if camera is None:
        return site
    floor, source = site.floor_days, site.floor_source
    if camera.floor_days and camera.floor_days > floor:
        floor, source = camera.floor_days, "camera"
    ceiling, csource = site.ceiling_days, site.ceiling_source
    if camera.ceiling_days:
        ceiling, csource = camera.ceiling_days, "camera"
    if ceiling is not None:
        ceiling = max(ceiling, floor)
    return Effective(floor, ceiling, source, csource)


def effective(camera_id: int) -> Effective:
    return combine(site_effective(), CameraPolicy.objects.filter(camera_id=camera_id).first())


def effective_for(camera_ids: Iterable[int]) -> dict[int, Effective]:
    """The policy of many cameras in two queries."""
    ids = list(camera_ids)
    site = site_effective()
    overrides = {p.camera_id: p for p in CameraPolicy.objects.filter(camera_id__in=ids)}
    return {cid: combine(site, overrides.get(cid)) for cid in ids}
