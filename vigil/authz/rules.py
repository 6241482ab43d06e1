"""The permission matrix: which role may do what, on which cameras, and why (the article).

This table is the single source of truth. ``docs/permissions.md`` is generated from it
(``vigil permissions --markdown``) and a test keeps the two identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from vigil.accounts.roles import Role


class Action(StrEnum):
    SITE_VIEW = "site.view"
    SITE_MANAGE = "site.manage"
    CAMERA_SERVICE = "camera.service"
    HEALTH_VIEW = "health.view"
    LIVE_VIEW = "footage.live"
    PLAYBACK = "footage.playback"
    EXPORT = "footage.export"
    DOWNLOAD = "footage.download"
    SNAPSHOT = "footage.snapshot"
    REQUEST_FILE = "request.file"
    REQUEST_VIEW_ALL = "request.view_all"
    REQUEST_DECIDE = "request.decide"
    GRANT_REVOKE = "grant.revoke"
    DELEGATE = "request.delegate"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    ALERT_VIEW = "alert.view"
    ALERT_HANDLE = "alert.handle"
    STORAGE_VIEW = "storage.view"
    RETENTION_REPORT = "retention.report"
    BUDGET_VIEW = "budget.view"
    AUDIT_VIEW = "audit.view"
    USER_MANAGE = "user.manage"
    SETTINGS_MANAGE = "settings.manage"


# Actions that touch footage: each use is decided per camera (and time range) and audited.
FOOTAGE_ACTIONS = frozenset(
    {Action.LIVE_VIEW, Action.PLAYBACK, Action.EXPORT, Action.DOWNLOAD, Action.SNAPSHOT}
)
# A snapshot is a still of footage the person is watching: it has no row of its own in
# the matrix nor in grants, and is decided as the action it is taken from -- live view
# for a camera now, playback for a recorded time range (vigil.authz.services.decide).
SNAPSHOT_SOURCES = (Action.LIVE_VIEW, Action.PLAYBACK)
# Actions whose resource is a camera (footage actions plus camera-scoped operations).
CAMERA_ACTIONS = FOOTAGE_ACTIONS | {
    Action.CAMERA_SERVICE,
    Action.HEALTH_VIEW,
    Action.ALERT_VIEW,
    Action.ALERT_HANDLE,
}


class Scope(StrEnum):
    ALL = "all"  # every camera, every time
    DEPARTMENT = "department"  # cameras in areas owned by the actor's department (Art. 6)
    RECENT = "recent"  # footage no older than [access] guard_playback_hours
    MAINTENANCE = "maintenance"  # cameras under maintenance (the supplier's work, Art. 8.2)
    # Live view of one's own department's areas, when the site allows it
    DEPARTMENT_IF_ENABLED = "department_if_enabled"
    DEPARTMENT_HEAD_LIVE = "department_head_live"


@dataclass(frozen=True)
class ActionInfo:
    description: str
    article: str


ACTIONS: dict[Action, ActionInfo] = {
    Action.SITE_VIEW: ActionInfo("See the inventory: cameras, areas, recorders", "Art. 1, 2.2"),
    Action.SITE_MANAGE: ActionInfo(
        "Add and change cameras, areas, recorders; import the inventory", "Art. 8.1, 8.2"
    ),
    Action.CAMERA_SERVICE: ActionInfo(
        "Record inspections and maintenance, change a camera's service state",
        "Art. 2.1, 7.2, 8.2",
    ),
    Action.HEALTH_VIEW: ActionInfo("See camera and recorder health", "Art. 2.3, 6, 7.2"),
    Action.LIVE_VIEW: ActionInfo("Watch a camera live", "Art. 7.1"),
    Action.PLAYBACK: ActionInfo("Play back recorded footage", "Art. 4.1, 4.3, 7.1"),
    Action.EXPORT: ActionInfo("Extract footage into a clip or evidence package", "Art. 5"),
    Action.DOWNLOAD: ActionInfo("Download a released copy of footage", "Art. 4.2, 4.3"),
    Action.SNAPSHOT: ActionInfo(
        "Take a snapshot of footage one is watching live or playing back", "Art. 4.1, 7.1"
    ),
    Action.REQUEST_FILE: ActionInfo("File a request to use footage", "Art. 3, 4.2"),
    Action.REQUEST_VIEW_ALL: ActionInfo("See every footage request", "Art. 4.1, 5"),
    Action.REQUEST_DECIDE: ActionInfo("Approve or refuse footage requests", "Art. 4.1, 4.2"),
    Action.GRANT_REVOKE: ActionInfo("Revoke an access grant", "Art. 4.1"),
    Action.DELEGATE: ActionInfo("Delegate the approval of requests", "Art. 4.1"),
    Action.HOLD_PLACE: ActionInfo("Place an evidence hold on footage", "Art. 4.3"),
    Action.HOLD_RELEASE: ActionInfo("Release an evidence hold", "Art. 4.1, 4.3"),
    Action.ALERT_VIEW: ActionInfo("See camera alerts (tamper, offline)", "Art. 2.3, 6, 7.1"),
    Action.ALERT_HANDLE: ActionInfo("Acknowledge and resolve alerts", "Art. 6, 7.1"),
    Action.STORAGE_VIEW: ActionInfo("See storage capacity and retention", "Art. 5"),
    Action.RETENTION_REPORT: ActionInfo("See and export the coverage report", "Art. 5"),
    Action.BUDGET_VIEW: ActionInfo("See maintenance and storage costs for budgeting", "Art. 9"),
    Action.AUDIT_VIEW: ActionInfo("Search the audit log", "Art. 4.1"),
    Action.USER_MANAGE: ActionInfo("Manage user accounts and roles", "Art. 1, 8.1"),
    Action.SETTINGS_MANAGE: ActionInfo("Change site settings", "Art. 1, 10"),
}

ROLE_ARTICLES: dict[Role, str] = {
    Role.PRINCIPAL: "Art. 1, 4.1, 10",
    Role.BOARD: "Art. 1, 4.1, 4.2, 4.3, 5",
    Role.SECURITY_HEAD: "Art. 7, 10",
    Role.SECURITY_GUARD: "Art. 7.1",
    Role.IT_STAFF: "Art. 5, 8",
    Role.FINANCE: "Art. 9",
    Role.DEPARTMENT_HEAD: "Art. 6",
    Role.STAFF: "Art. 3, 6",
    Role.SUPPLIER_TECHNICIAN: "Art. 8.2",
    Role.EXTERNAL_REQUESTER: "Art. 4.2",
    Role.GUARDIAN: "Art. 3; Law 91/2025 Art. 24; Decree 356/2025 Art. 5",
}

_BOARD_COMMON: dict[Action, Scope] = {
    Action.SITE_VIEW: Scope.ALL,
    Action.HEALTH_VIEW: Scope.ALL,
    Action.LIVE_VIEW: Scope.ALL,
    Action.PLAYBACK: Scope.ALL,
    Action.DOWNLOAD: Scope.ALL,
    Action.REQUEST_FILE: Scope.ALL,
    Action.REQUEST_VIEW_ALL: Scope.ALL,
    Action.REQUEST_DECIDE: Scope.ALL,
    Action.GRANT_REVOKE: Scope.ALL,
    Action.HOLD_PLACE: Scope.ALL,
    Action.HOLD_RELEASE: Scope.ALL,
    Action.ALERT_VIEW: Scope.ALL,
    Action.ALERT_HANDLE: Scope.ALL,
    Action.STORAGE_VIEW: Scope.ALL,
    Action.RETENTION_REPORT: Scope.ALL,
    Action.BUDGET_VIEW: Scope.ALL,
    Action.AUDIT_VIEW: Scope.ALL,
}

# Role -> action -> scope. Anything absent is refused unless an access grant covers it
# (grants are created only by approved requests; see vigil.authz.models.Grant).
MATRIX: dict[Role, dict[Action, Scope]] = {
    Role.PRINCIPAL: {
        **_BOARD_COMMON,
        Action.DELEGATE: Scope.ALL,
        Action.USER_MANAGE: Scope.ALL,
        Action.SETTINGS_MANAGE: Scope.ALL,
    },
    Role.BOARD: dict(_BOARD_COMMON),
    Role.SECURITY_HEAD: {
        Action.SITE_VIEW: Scope.ALL,
        Action.HEALTH_VIEW: Scope.ALL,
        Action.CAMERA_SERVICE: Scope.ALL,
        Action.LIVE_VIEW: Scope.ALL,
        Action.PLAYBACK: Scope.ALL,
        Action.REQUEST_FILE: Scope.ALL,
        Action.HOLD_PLACE: Scope.ALL,
        Action.ALERT_VIEW: Scope.ALL,
        Action.ALERT_HANDLE: Scope.ALL,
        Action.STORAGE_VIEW: Scope.ALL,
        Action.RETENTION_REPORT: Scope.ALL,
    },
    Role.SECURITY_GUARD: {
        Action.SITE_VIEW: Scope.ALL,
        Action.HEALTH_VIEW: Scope.ALL,
        Action.LIVE_VIEW: Scope.ALL,
        Action.PLAYBACK: Scope.RECENT,
        Action.REQUEST_FILE: Scope.ALL,
        Action.ALERT_VIEW: Scope.ALL,
        Action.ALERT_HANDLE: Scope.ALL,
    },
    Role.IT_STAFF: {
        Action.SITE_VIEW: Scope.ALL,
        Action.SITE_MANAGE: Scope.ALL,
        Action.CAMERA_SERVICE: Scope.ALL,
        Action.HEALTH_VIEW: Scope.ALL,
        Action.LIVE_VIEW: Scope.ALL,
        Action.REQUEST_FILE: Scope.ALL,
        Action.REQUEST_VIEW_ALL: Scope.ALL,
        Action.ALERT_VIEW: Scope.ALL,
        Action.ALERT_HANDLE: Scope.ALL,
        Action.STORAGE_VIEW: Scope.ALL,
        Action.RETENTION_REPORT: Scope.ALL,
        Action.USER_MANAGE: Scope.ALL,
        Action.SETTINGS_MANAGE: Scope.ALL,
    },
    Role.FINANCE: {
        Action.SITE_VIEW: Scope.ALL,
        Action.REQUEST_FILE: Scope.ALL,
        Action.STORAGE_VIEW: Scope.ALL,
        Action.RETENTION_REPORT: Scope.ALL,
        Action.BUDGET_VIEW: Scope.ALL,
    },
    Role.DEPARTMENT_HEAD: {
        Action.SITE_VIEW: Scope.ALL,
        Action.HEALTH_VIEW: Scope.DEPARTMENT,
        Action.LIVE_VIEW: Scope.DEPARTMENT_HEAD_LIVE,
        Action.REQUEST_FILE: Scope.ALL,
        Action.ALERT_VIEW: Scope.DEPARTMENT,
        Action.ALERT_HANDLE: Scope.DEPARTMENT,
    },
    Role.STAFF: {
        Action.LIVE_VIEW: Scope.DEPARTMENT_IF_ENABLED,
        Action.REQUEST_FILE: Scope.ALL,
    },
    Role.SUPPLIER_TECHNICIAN: {
        Action.SITE_VIEW: Scope.ALL,
        Action.HEALTH_VIEW: Scope.ALL,
        Action.CAMERA_SERVICE: Scope.MAINTENANCE,
        Action.LIVE_VIEW: Scope.MAINTENANCE,
    },
    Role.EXTERNAL_REQUESTER: {
        Action.REQUEST_FILE: Scope.ALL,
    },
    Role.GUARDIAN: {
        Action.REQUEST_FILE: Scope.ALL,
    },
}

# What the local operator (someone running `vigil` commands on the server, who already
# holds the data directory) may do without a user account. Footage is not among them:
# extraction from the command line needs a user with a grant (--as USERNAME).
OPERATOR_ACTIONS = frozenset(
    {
        Action.SITE_VIEW,
        Action.SITE_MANAGE,
        Action.CAMERA_SERVICE,
        Action.HEALTH_VIEW,
        Action.STORAGE_VIEW,
        Action.RETENTION_REPORT,
        Action.AUDIT_VIEW,
        Action.USER_MANAGE,
        Action.SETTINGS_MANAGE,
    }
)

# Footage actions an access grant may carry.
GRANTABLE_ACTIONS = (Action.LIVE_VIEW, Action.PLAYBACK, Action.EXPORT, Action.DOWNLOAD)

# What the principal's delegation (Action.DELEGATE, vigil.authz.models.Delegation) lets
# the delegate do while it is active: decide requests, and what deciding them needs --
# seeing them all, revoking the grants they created, placing the evidence hold an
# approved investigation calls for (Art. 4.1, 4.3). Never footage itself.
DELEGATED_ACTIONS = (
    Action.REQUEST_DECIDE,
    Action.REQUEST_VIEW_ALL,
    Action.GRANT_REVOKE,
    Action.HOLD_PLACE,
)

SCOPE_TEXT: dict[Scope, str] = {
    Scope.ALL: "yes",
    Scope.DEPARTMENT: "own department's areas",
    Scope.RECENT: "last N hours (guard_playback_hours)",
    Scope.MAINTENANCE: "cameras under maintenance",
    Scope.DEPARTMENT_IF_ENABLED: "own department's areas, if staff_live_view_own_area",
    Scope.DEPARTMENT_HEAD_LIVE: "own department's areas, if department_head_live_view",
}

ROLE_LABELS = {r: r.label for r in Role}
SCOPE_LABELS = {
    Scope.ALL: _("all"),
    Scope.DEPARTMENT: _("own department"),
    Scope.RECENT: _("recent footage"),
    Scope.MAINTENANCE: _("cameras under maintenance"),
    Scope.DEPARTMENT_IF_ENABLED: _("own department, if enabled"),
    Scope.DEPARTMENT_HEAD_LIVE: _("own department, if enabled"),
}
