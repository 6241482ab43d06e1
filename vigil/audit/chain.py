"""Hashing and verification of the audit chain (pure functions over rows)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_username",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "outcome",
    "client_ip",
    "via",
    "detail_json",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def timestamp_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    material = {k: fields[k] for k in HASHED_FIELDS}
    material["created_at"] = timestamp_text(fields["created_at"])
    payload = canonical_json({"entry": material, "prev": prev_hash})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Problem:
    seq: int
    message: str

    def __str__(self) -> str:
        return f"entry #{self.seq}: {self.message}"


def verify_rows(rows: Iterable[dict[str, Any]]) -> Iterator[Problem]:
    """Yield every break in the chain, rows given in ascending ``seq`` order."""
    expected_seq = 1
    prev = GENESIS_HASH
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            if seq > expected_seq:
                yield Problem(
                    expected_seq,
                    f"missing (entries #{expected_seq}..#{seq - 1} were deleted)",
                )
            else:
                yield Problem(seq, "sequence out of order")
        if row["prev_hash"] != prev:
            yield Problem(seq, "does not follow the previous entry (deleted or reordered)")
        recomputed = entry_hash(row, row["prev_hash"])
        if recomputed != row["entry_hash"]:
            yield Problem(seq, "content was altered after it was written")
        prev = row["entry_hash"]
        expected_seq = seq + 1


def read_anchors(path: Path) -> list[tuple[int, str]]:
    """The (seq, hash) pairs copied outside the database as entries were committed."""
    anchors: list[tuple[int, str]] = []
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return anchors
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and len(parts[1]) == 64:
            anchors.append((int(parts[0]), parts[1]))
    return anchors
