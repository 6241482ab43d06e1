"""Navigation: each app lists its entries in ``vigil/<app>/nav.py`` as ``NAV``.

An entry shows when the user may do its action (the permission service decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from vigil.core.plugins import app_modules

StrOrPromise = str | Promise


@dataclass(frozen=True)
class NavItem:
    label: StrOrPromise
    url_name: str
    action: str | None  # an authz Action value, or None for any signed-in user
    order: int = 100
    section: str = "main"
    # URL name of a small fragment (e.g. a count of open alerts) shown beside the entry
    # and refreshed every few seconds with htmx.
    badge_url_name: str = ""


# Entries outside "main" are grouped in a menu per section, in this order.
SECTIONS: dict[str, StrOrPromise] = {
    "storage": _("Storage"),
    "site": _("Administration"),
}


@lru_cache(maxsize=1)
def all_items() -> tuple[NavItem, ...]:
    items: list[NavItem] = []
    for module in app_modules("nav"):
        items.extend(getattr(module, "NAV", ()))
    return tuple(sorted(items, key=lambda i: (i.order, i.url_name)))


def items_for(user: object) -> list[dict[str, str]]:
    from vigil.authz.rules import FOOTAGE_ACTIONS, Action
    from vigil.authz.services import cameras_for, can

    out = []
    for item in all_items():
        if item.action is not None:
            action = Action(item.action)
            if action in FOOTAGE_ACTIONS:
                if not cameras_for(user, action).exists():  # type: ignore[arg-type]
                    continue
            elif not can(user, action):  # type: ignore[arg-type]
                continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        badge = ""
        if item.badge_url_name:
            try:
                badge = reverse(item.badge_url_name)
            except NoReverseMatch:
                badge = ""
        out.append(
            {
                "label": str(item.label),
                "url": url,
                "name": item.url_name,
                "section": item.section,
                "badge": badge,
            }
        )
    return out


def menus_for(user: object) -> tuple[list[dict[str, str]], list[dict[str, object]]]:
    """The main entries, and the other sections as labelled menus (empty ones dropped)."""
    items = items_for(user)
    main = [i for i in items if i["section"] == "main"]
    menus: list[dict[str, object]] = []
    for key, label in SECTIONS.items():
        entries = [i for i in items if i["section"] == key]
        if entries:
            menus.append({"label": str(label), "items": entries})
    others = [i for i in items if i["section"] not in SECTIONS and i["section"] != "main"]
    main += others
    return main, menus
