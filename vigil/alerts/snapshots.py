"""Alert snapshots (JPEG) as content-addressed files under ``$VIGIL_DATA_DIR/alerts/``.

Files, not database rows: a tamper alert carries two ~30-60 KB pictures and the catalog
database (SQLite by default) should stay small and fast for the recorder's writes. The
name is the SHA-256 of the content, so a snapshot can be checked against the alert row
that names it, and the same "last good view" shared by several alerts is stored once.
They are images of the school's areas (footage-derived): served only to people who may
play back that camera at that time, through ``vigil.alerts.views``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from django.conf import settings

_SHA = re.compile(r"^[0-9a-f]{64}$")


def root() -> Path:
    return Path(settings.PATHS.root) / "alerts" / "snapshots"


def path_for(digest: str) -> Path:
    if not _SHA.match(digest):
        raise ValueError("not a snapshot digest")
    return root() / digest[:2] / f"{digest}.jpg"


def store(data: bytes) -> str:
    """Write ``data`` (once) and return its digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = path_for(digest)
    if path.exists():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return digest


def read(digest: str) -> bytes | None:
    """The snapshot's bytes, or None when missing or not matching its digest."""
    try:
        data = path_for(digest).read_bytes()
    except (OSError, ValueError):
        return None
    if hashlib.sha256(data).hexdigest() != digest:
        return None
    return data
