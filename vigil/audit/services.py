"""Writing and verifying the audit chain.

``record`` must be called inside the transaction of the change it records: the entry
commits or rolls back with it. Denied attempts are recorded too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.audit.chain import (
    HASHED_FIELDS,
    Problem,
    canonical_json,
    entry_hash,
    read_anchors,
    verify_rows,
)
from vigil.audit.models import AuditEntry, AuditHead, Outcome

log = logging.getLogger(__name__)


def anchor_path() -> Path:
    return Path(getattr(settings, "VIGIL_AUDIT_ANCHOR", settings.PATHS.audit / "anchor.log"))


def _append_anchor(seq: int, digest: str) -> None:
    path = anchor_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{seq} {digest}\n".encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:  # the entry itself is committed; say loudly that the copy is not
        log.error("audit anchor copy failed for entry #%s: %s", seq, exc)


def _describe(obj: Any) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    if isinstance(obj, models.Model):
        return obj._meta.label_lower, str(obj.pk), str(obj)[:300]
    if isinstance(obj, tuple) and len(obj) == 3:
        return str(obj[0]), str(obj[1]), str(obj[2])[:300]
    return type(obj).__name__.lower(), "", str(obj)[:300]


def record(
    actor: Actor,
    action: str,
    obj: Any = None,
    *,
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. ``obj`` is a model instance or a (type, id, text) triple."""
    object_type, object_id, object_repr = _describe(obj)
    with transaction.atomic():
        head, _created = AuditHead.objects.select_for_update().get_or_create(pk=1)
        fields: dict[str, Any] = {
            "seq": head.last_seq + 1,
            "created_at": timezone.now(),
            "actor_id": actor.user.pk if actor.user is not None else None,
            "actor_username": actor.username[:150],
            "actor_role": actor.role,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "object_repr": object_repr,
            "outcome": str(outcome),
            "client_ip": actor.ip or "",
            "via": actor.via,
            "detail_json": canonical_json(detail or {}),
        }
        digest = entry_hash(fields, head.last_hash)
        entry = AuditEntry.objects.create(prev_hash=head.last_hash, entry_hash=digest, **fields)
        head.last_seq = entry.seq
        head.last_hash = digest
        head.save(update_fields=["last_seq", "last_hash"])
        seq = entry.seq
        transaction.on_commit(lambda: _append_anchor(seq, digest))
    return entry


@dataclass
class VerifyResult:
    entries: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(anchors: Path | None = None) -> VerifyResult:
    """Check every link, then compare with the copy of hashes kept outside the database."""
    anchored = dict(read_anchors(anchors or anchor_path()))
    seen: dict[int, str] = {}
    count = 0
    last_seq = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal count, last_seq
        columns = dict.fromkeys(["seq", "prev_hash", "entry_hash", *HASHED_FIELDS])
        for row in AuditEntry.objects.order_by("seq").values(*columns).iterator(chunk_size=5000):
            count += 1
            last_seq = int(row["seq"])
            if last_seq in anchored:
                seen[last_seq] = row["entry_hash"]
            yield row

    problems = list(verify_rows(rows()))
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and head.last_seq != last_seq:
        problems.append(
            Problem(
                min(head.last_seq, last_seq) + 1,
                f"the chain ends at #{last_seq} but its head records #{head.last_seq} "
                "(entries removed from the end)",
            )
        )
    for seq, digest in anchored.items():
        if seq > last_seq:
            problems.append(
                Problem(seq, "recorded in the anchor copy but missing from the database")
            )
        elif seen.get(seq) != digest:
            problems.append(Problem(seq, "differs from the hash in the anchor copy"))
    problems.sort(key=lambda p: p.seq)
    return VerifyResult(entries=count, problems=problems)
