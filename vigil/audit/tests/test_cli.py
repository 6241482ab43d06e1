"""`vigil audit verify` on a real data directory, as an administrator would run it."""

import sqlite3

import pytest

from conftest import run_vigil

pytestmark = pytest.mark.slow


def test_audit_verify_exit_codes(data_dir) -> None:  # type: ignore[no-untyped-def]
    run_vigil(["init", "--demo"], data_dir, check=True)
    ok = run_vigil(["audit", "verify"], data_dir)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    db = sqlite3.connect(data_dir / "vigil.sqlite3")
    db.execute("DROP TRIGGER audit_entry_no_update")
    db.execute("UPDATE audit_auditentry SET actor_username = 'nobody' WHERE seq = 1")
    db.commit()
    db.close()
    broken = run_vigil(["audit", "verify"], data_dir)
    assert broken.returncode != 0
    assert "entry #1" in broken.stderr
    assert (
        broken.stderr.strip()
        .splitlines()[-1]
        .startswith("CommandError: audit chain broken at entry #1")
    )
