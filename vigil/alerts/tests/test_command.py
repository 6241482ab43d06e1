"""`vigil alerts` as the operator runs it."""

from __future__ import annotations

from pathlib import Path

from conftest import run_vigil


def test_dispatch_once_list_and_webhook_secret(demo_data_dir: Path) -> None:
    out = run_vigil(["alerts", "dispatch"], demo_data_dir, check=True)
    assert "escalated" in out.stdout and "failed 0" in out.stdout
    run_vigil(["alerts", "list"], demo_data_dir, check=True)
    first = run_vigil(["alerts", "webhook-secret"], demo_data_dir, check=True).stdout.strip()
    again = run_vigil(["alerts", "webhook-secret"], demo_data_dir, check=True).stdout.strip()
    assert len(first) >= 40 and first == again
    assert (demo_data_dir / "keys" / "alerts-webhook.key").stat().st_mode & 0o077 == 0
