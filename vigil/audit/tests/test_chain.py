"""The audit chain detects edits, deletions, reordering and truncation."""

from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from vigil.accounts.actor import Actor
from vigil.audit import services
from vigil.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(tmp_path: Path):  # type: ignore[no-untyped-def]
    actor = Actor.system("test")
    for i in range(10):
        services.record(
            actor, "test.event", ("thing", str(i), f"thing {i}"), detail={"i": i, "note": "é"}
        )
    return tmp_path / "no-anchor.log"


def _raw(sql: str, params: list | None = None) -> None:  # type: ignore[type-arg]
    with connection.cursor() as cur:
        cur.execute(sql, params or [])


def _drop_guard() -> None:
    """What an attacker with database access does first."""
    if connection.vendor == "postgresql":
        _raw("DROP TRIGGER IF EXISTS audit_entry_no_update ON audit_auditentry")
    else:
        _raw("DROP TRIGGER IF EXISTS audit_entry_no_update")


def test_intact_chain_verifies(chain) -> None:  # type: ignore[no-untyped-def]
    result = services.verify(chain)
    assert result.ok, result.problems
    assert result.entries == 10


def test_update_is_refused_by_the_database(chain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw("UPDATE audit_auditentry SET actor_username = 'someone' WHERE seq = 3")


def test_edited_entry_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    _drop_guard()
    _raw("UPDATE audit_auditentry SET detail_json = %s WHERE seq = 4", ['{"i":40,"note":"é"}'])
    result = services.verify(chain)
    assert not result.ok
    assert result.problems[0].seq == 4
    assert "altered" in result.problems[0].message


def test_edited_time_or_outcome_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    _drop_guard()
    _raw("UPDATE audit_auditentry SET outcome = 'denied' WHERE seq = 7")
    assert services.verify(chain).problems[0].seq == 7


def test_deleted_entry_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    _raw("DELETE FROM audit_auditentry WHERE seq = 5")
    result = services.verify(chain)
    assert not result.ok
    assert result.problems[0].seq == 5
    assert "missing" in result.problems[0].message


def test_reordered_entries_are_named(chain) -> None:  # type: ignore[no-untyped-def]
    _drop_guard()
    # Swap the contents of entries 3 and 6 but keep their sequence numbers.
    _raw("UPDATE audit_auditentry SET seq = -3 WHERE seq = 3")
    _raw("UPDATE audit_auditentry SET seq = 3 WHERE seq = 6")
    _raw("UPDATE audit_auditentry SET seq = 6 WHERE seq = -3")
    result = services.verify(chain)
    assert not result.ok
    assert result.problems[0].seq == 3


def test_truncated_tail_is_detected(chain) -> None:  # type: ignore[no-untyped-def]
    _raw("DELETE FROM audit_auditentry WHERE seq >= 9")
    result = services.verify(chain)
    assert not result.ok
    assert result.problems[0].seq == 9
    assert "removed from the end" in result.problems[0].message


def test_anchor_copy_catches_a_rewritten_tail(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    anchor = tmp_path / "anchor.log"
    anchor.write_text(
        "".join(f"{e.seq} {e.entry_hash}\n" for e in AuditEntry.objects.order_by("seq"))
    )
    assert services.verify(anchor).ok
    # Delete the last two entries and fix the head, as someone covering their tracks would.
    _raw("DELETE FROM audit_auditentry WHERE seq >= 9")
    last = AuditEntry.objects.order_by("-seq").first()
    _raw("UPDATE audit_audithead SET last_seq = %s, last_hash = %s", [last.seq, last.entry_hash])
    assert services.verify(chain).ok  # the chain alone cannot see it...
    result = services.verify(anchor)  # ...the copy kept outside the database can
    assert [p.seq for p in result.problems] == [9, 10]


def test_entry_rolls_back_with_its_change(chain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record(Actor.system("test"), "test.event")
        raise RuntimeError("the change failed")
    assert AuditEntry.objects.count() == 10
    assert services.verify(chain).ok


@pytest.mark.django_db(transaction=True)
def test_committed_entries_are_copied_to_the_anchor_file(settings, tmp_path: Path) -> None:
    settings.VIGIL_AUDIT_ANCHOR = tmp_path / "anchor.log"
    for i in range(3):
        services.record(Actor.system("test"), "test.event", detail={"i": i})
    lines = (tmp_path / "anchor.log").read_text().splitlines()
    entries = list(AuditEntry.objects.order_by("seq").values_list("seq", "entry_hash"))
    assert lines == [f"{s} {h}" for s, h in entries]
    assert services.verify().ok
