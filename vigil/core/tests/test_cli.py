"""The `vigil` command as a school's IT staff runs it: real processes, real data dirs."""

import json
from pathlib import Path

import pytest

from conftest import run_vigil

pytestmark = pytest.mark.slow


def _one_line_error(proc) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_help_lists_commands_and_each_has_help(data_dir: Path) -> None:
    out = run_vigil(["--help"], data_dir, check=True).stdout
    for name in (
        "init",
        "demo",
        "serve",
        "inventory",
        "camera",
        "audit",
        "record",
        "check",
        "status",
    ):
        assert f"  {name} " in out
        assert run_vigil([name, "--help"], data_dir).returncode == 0


def test_init_demo_then_camera_and_inventory_commands(data_dir: Path, tmp_path: Path) -> None:
    init = run_vigil(["init", "--demo"], data_dir, check=True)
    assert "86 cameras" in init.stdout
    assert "Administrator login: admin / " in init.stdout
    cams = json.loads(
        run_vigil(["camera", "list", "--format", "json"], data_dir, check=True).stdout
    )
    assert len(cams) == 86
    assert {c["recorder"] for c in cams} == {"NVR-01", "NVR-02", "NVR-03"}
    table = run_vigil(["camera", "list"], data_dir, check=True).stdout
    assert table.strip().endswith("86 camera(s)")

    dup = run_vigil(
        ["camera", "add", "CAM-001", "--name", "x", "--area", "CONG-CHINH", "--recorder", "NVR-01",
         "--main", "rtsp://10.0.0.1/x"], data_dir,
    )  # fmt: skip
    assert dup.returncode != 0
    assert "already exists" in _one_line_error(dup)
    bad = run_vigil(
        ["camera", "add", "NEW-1", "--name", "x", "--area", "CONG-CHINH", "--recorder", "NVR-01",
         "--main", "rtsp://10.0.0.1:70000/x"], data_dir,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "port" in _one_line_error(bad)
    ok = run_vigil(
        ["camera", "add", "NEW-1", "--name", "Gate 5", "--area", "CONG-CHINH", "--recorder", "NVR-03",
         "--main", "rtsp://admin:S3cret@10.0.0.1/x", "--inspection-passed", "2026-11-20"], data_dir,
    )  # fmt: skip
    assert ok.returncode == 0 and "in service" in ok.stdout
    listed = run_vigil(["camera", "list", "--format", "json"], data_dir, check=True).stdout
    assert "S3cret" not in listed and "rtsp://10.0.0.1/x" in listed

    yaml_text = run_vigil(["inventory", "export", "--format", "yaml"], data_dir, check=True).stdout
    csv_text = run_vigil(["inventory", "export", "--format", "csv"], data_dir, check=True).stdout
    assert "S3cret" not in yaml_text + csv_text
    (tmp_path / "site.yaml").write_text(yaml_text, encoding="utf-8")
    (tmp_path / "cams.csv").write_text(csv_text, encoding="utf-8")
    again = run_vigil(["inventory", "import", str(tmp_path / "site.yaml")], data_dir, check=True)
    assert "cameras: 0 created, 87 updated" in again.stdout
    run_vigil(["inventory", "import", str(tmp_path / "cams.csv")], data_dir, check=True)
    assert (
        run_vigil(["inventory", "export", "--format", "yaml"], data_dir, check=True).stdout
        == yaml_text
    )

    broken = tmp_path / "broken.csv"
    broken.write_text(
        csv_text.replace("CONG-CHINH", "NOWHERE", 1).replace("code,", "code,color,", 1)
    )
    imp = run_vigil(["inventory", "import", str(broken)], data_dir)
    assert imp.returncode != 0
    assert "broken.csv, row 1, field 'color': unknown column" in imp.stderr
    assert "nothing was imported" in imp.stderr.strip().splitlines()[-1]

    assert run_vigil(["audit", "verify"], data_dir).returncode == 0
    entries = run_vigil(["manage", "shell", "-c", "from vigil.audit.models import AuditEntry as A; print(A.objects.filter(action='camera.create').count())"], data_dir, check=True)  # fmt: skip
    assert entries.stdout.strip().splitlines()[-1] == "1"


def test_uninitialised_database_and_bad_config_are_one_line_errors(data_dir: Path) -> None:
    proc = run_vigil(["camera", "list"], data_dir)
    assert proc.returncode != 0
    assert "run 'vigil init' first" in _one_line_error(proc)
    (data_dir / "vigil.toml").write_text("[server]\nport = 8000\nprot = 1\n")
    proc = run_vigil(["init"], data_dir)
    assert proc.returncode != 0
    assert "unknown key 'server.prot'" in _one_line_error(proc)
