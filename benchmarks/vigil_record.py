"""Run the real `vigil record` on a benchmark's cameras (used by benchmarks/recording.py).

Creates a throw-away data directory, initialises the database, imports one recorder whose
volume is ``--volume`` and the cameras from ``--cameras-json`` (code + RTSP URL, each with
a passed inspection so it counts in service), then replaces itself with
``vigil record --recorder BENCH`` — the same process the school runs, catalog writes,
health updates and all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volume", required=True)
    ap.add_argument("--cameras-json", required=True)
    ap.add_argument("--segment-seconds", default="10")
    args = ap.parse_args()
    cams = json.loads(Path(args.cameras_json).read_text(encoding="utf-8"))
    data = Path(tempfile.mkdtemp(prefix="vigil-bench-data-"))
    env = {**os.environ, "VIGIL_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    site = {
        "vigil_inventory": 1,
        "school": {"name": "Benchmark"},
        "departments": [{"code": "SEC", "name": "Security", "is_security_office": True}],
        "areas": [{"code": "A", "name": "Area", "department": "SEC"}],
        "recorders": [
            {
                "code": "BENCH",
                "name": "Benchmark recorder",
                "volumes": [
                    {
                        "label": "disk1",
                        "path": str(Path(args.volume).resolve()),
                        "capacity_bytes": 10**13,
                    }
                ],
            }
        ],
        "cameras": [
            {
                "code": c["code"],
                "name": c["code"],
                "area": "A",
                "recorder": "BENCH",
                "main_url": c["url"],
                "inspection_date": "2026-01-01",
                "inspection_result": "passed",
            }
            for c in cams
        ],
    }
    (data / "site.yaml").write_text(yaml.safe_dump(site), encoding="utf-8")
    vigil = [sys.executable, "-m", "vigil.cli"]
    subprocess.run([*vigil, "init"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*vigil, "inventory", "import", str(data / "site.yaml")],
        env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    os.chdir(ROOT)
    os.environ.update(env)
    os.execv(  # noqa: S606 - replace this process with the recorder being measured
        sys.executable,
        [*vigil, "record", "--recorder", "BENCH", "--segment-seconds", args.segment_seconds],
    )


if __name__ == "__main__":
    sys.exit(main())
