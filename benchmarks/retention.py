#!/usr/bin/env python3
"""Retention benchmark (issue 4): a full catalog, timelines, daily coverage, and a sweep
under a concurrent recording writer.

    .venv/bin/python benchmarks/retention.py                  # 86 cameras x 20 days, 3 repeats
    .venv/bin/python benchmarks/retention.py --days 2 --samples 50 --repeats 1   # quick look

What it does:
1. Builds (once; cached in .cache/retention-bench-<hash of the parameters>/) a data directory
   with the demo school and a catalog of CAMERAS x DAYS of 10-second segments, ~15 million
   rows for 86 x 20, inserted in recording order (every camera's segment of one instant,
   then the next instant), plus one gap per camera-day. Generated with SQL inside SQLite.
2. Timeline of one camera-day (segments and gaps between two instants, through
   ``recording.catalog.camera_timeline``): p50/p95 over SAMPLES random camera-days.
3. Coverage of all cameras for one day (``coverage.compute_day``, which also writes the 86
   coverage rows).
4. One retention sweep (``retention.services.sweep``) that must make room on NVR-01 — its
   declared capacity is set to the footage it holds, so the sweep deletes up to
   ``max_deletions_per_sweep`` segments in batches — while another process inserts a
   segment row every 100 ms the way the recorder does (BEGIN IMMEDIATE; INSERT; COMMIT)
   and records each write's latency. The deleted rows are put back afterwards so the cached
   catalog stays the same for the next run.

Targets: timeline p95 < 50 ms; all-camera daily coverage < 2 s; no recording write blocked
for more than 100 ms by the sweep. Figures: median over REPEATS; raw results are written to
benchmarks/results/retention-<time>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 4  # bump when the generator or the schema it relies on changes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---------------------------------------------------------------------------- catalog


def cache_dir(args: argparse.Namespace) -> Path:
    key = hashlib.sha256(
        json.dumps(
            {
                "cameras": args.cameras,
                "days": args.days,
                "segment_seconds": args.segment_seconds,
                "schema": SCHEMA_VERSION,
                "migrations": sorted(
                    str(p.relative_to(ROOT)) for p in (ROOT / "vigil").glob("*/migrations/0*.py")
                ),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    return ROOT / ".cache" / f"retention-bench-{key}"


def vigil(args: list[str], data_dir: Path) -> None:
    env = {**os.environ, "VIGIL_DATA_DIR": str(data_dir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "-m", "vigil.cli", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def build_catalog(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    meta_path = data_dir / "bench-meta.json"
    if meta_path.exists() and not args.rebuild:
        return dict(json.loads(meta_path.read_text()))
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    # A floor of half the catalogue, so that the sweep finds footage it may delete.
    (data_dir / "vigil.toml").write_text(f"[retention]\nfloor_days = {max(1, args.days // 2)}\n")
    print(f"building the catalog in {data_dir} (once; reused by later runs)", flush=True)
    started = time.monotonic()
    vigil(["init", "--demo"], data_dir)
    db = sqlite3.connect(data_dir / "vigil.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    cams = db.execute(
        "SELECT c.id, c.code, v.id, c.bitrate_kbps FROM school_camera c "
        "JOIN school_storagevolume v ON v.recorder_id = c.recorder_id ORDER BY c.id"
    ).fetchall()[: args.cameras]
    db.execute("CREATE TEMP TABLE cams (id INTEGER, code TEXT, volume INTEGER, kbps INTEGER)")
    db.executemany("INSERT INTO cams VALUES (?, ?, ?, ?)", cams)
    step = args.segment_seconds
    steps = args.days * 86400 // step
    # The newest segment ends on the last whole hour before now.
    end = int(time.time()) // 3600 * 3600
    first = end - steps * step
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='recording_segment' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        db.execute(f'DROP INDEX "{name}"')
    db.execute("BEGIN")
    chunk = 8640  # one day of instants per statement
    for lo in range(0, steps, chunk):
        hi = min(steps, lo + chunk)
        db.execute(
            """
            WITH RECURSIVE t(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM t WHERE n + 1 < ?)
            INSERT INTO recording_segment (path, start, "end", duration, size_bytes, sha256,
                codec, codec_string, width, height, fps, has_audio, init_size, recovered,
                created_at, camera_id, volume_id)
            SELECT
                printf('%s/%s/%s-%d.mp4', c.code, date(? + n * ?, 'unixepoch'),
                       strftime('%H%M%S', ? + n * ?, 'unixepoch'), n),
                strftime('%Y-%m-%d %H:%M:%S', ? + n * ?, 'unixepoch'),
                strftime('%Y-%m-%d %H:%M:%S', ? + (n + 1) * ?, 'unixepoch'),
                ?, c.kbps * 125 * ? + (abs(random()) % 20000) - 10000,
                printf('%064x', n * 1000 + c.id), 'h265', 'hvc1.1.6.L120.90', 1920, 1080, 15,
                0, 900, 0, strftime('%Y-%m-%d %H:%M:%S', ? + (n + 1) * ?, 'unixepoch'),
                c.id, c.volume
            FROM t CROSS JOIN cams c ORDER BY n, c.id
            """,
            (lo, hi, first, step, first, step, first, step, first, step, step, step, first, step),
        )
        print(f"  {hi * len(cams):,} segments", end="\r", flush=True)
    # One gap a day per camera, 2 to 10 minutes, with a cause.
    db.execute(
        """
        WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n + 1 < ?)
        INSERT INTO recording_gap (start, "end", cause, detail, camera_id)
        SELECT strftime('%Y-%m-%d %H:%M:%S', ? + n * 86400 + (abs(random()) % 80000), 'unixepoch'),
               NULL, 'camera_unreachable', 'benchmark', c.id
        FROM d CROSS JOIN cams c
        """,
        (args.days, first),
    )
    db.execute(
        """UPDATE recording_gap SET "end" = strftime('%Y-%m-%d %H:%M:%S',
               unixepoch(start) + 120 + (abs(random()) % 480), 'unixepoch')"""
    )
    db.execute("COMMIT")
    print()
    for name, sql in indexes:
        t0 = time.monotonic()
        db.execute(sql)
        print(f"  index {name}: {time.monotonic() - t0:.0f} s", flush=True)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = db.execute("SELECT count(*) FROM recording_segment").fetchone()[0]
    db.close()
    meta = {
        "rows": rows,
        "first": first,
        "end": end,
        "cameras": len(cams),
        "days": args.days,
        "floor_days": max(1, args.days // 2),
        "built_seconds": round(time.monotonic() - started, 1),
        "db_bytes": (data_dir / "vigil.sqlite3").stat().st_size,
    }
    meta_path.write_text(json.dumps(meta))
    print(f"catalog ready: {rows:,} segments in {meta['built_seconds']} s", flush=True)
    return meta


# ---------------------------------------------------------------------- the writer


def writer(  # noqa: PLR0917 (multiprocessing passes arguments by position)
    db_path: str, volume_id: int, camera_id: int, stop: Any, ready: Any, out: Any
) -> None:
    """Insert one segment row every 100 ms as the recorder does; report each latency."""
    conn = sqlite3.connect(db_path, timeout=20, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=20000")
    samples: list[tuple[float, float]] = []
    n = 0
    base = datetime(2100, 1, 1, tzinfo=UTC)
    ready.set()
    next_at = time.monotonic()
    while not stop.is_set():
        start = base + timedelta(seconds=10 * n)
        t0 = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            """INSERT INTO recording_segment (path, start, "end", duration, size_bytes, sha256,
               codec, codec_string, width, height, fps, has_audio, init_size, recovered,
               created_at, camera_id, volume_id)
               VALUES (?, ?, ?, 10, 1600000, ?, 'h265', '', 1920, 1080, 15, 0, 0, 0, ?, ?, ?)""",
            (
                f"bench-writer/{n}.mp4",
                start.strftime("%Y-%m-%d %H:%M:%S"),
                (start + timedelta(seconds=10)).strftime("%Y-%m-%d %H:%M:%S"),
                f"{n:064x}",
                start.strftime("%Y-%m-%d %H:%M:%S"),
                camera_id,
                volume_id,
            ),
        )
        conn.execute("COMMIT")
        samples.append((t0, (time.monotonic() - t0) * 1000))
        n += 1
        next_at += 0.1
        time.sleep(max(0.0, next_at - time.monotonic()))
    conn.execute("DELETE FROM recording_segment WHERE path LIKE 'bench-writer/%'")
    conn.close()
    out.put(samples)


# -------------------------------------------------------------------- measurements


def setup_django(data_dir: Path) -> None:
    os.environ["VIGIL_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vigil.settings"
    os.environ.setdefault("VIGIL_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def measure_timelines(meta: dict[str, Any], samples: int, rng: random.Random) -> list[float]:
    from vigil.recording import catalog
    from vigil.retention import coverage
    from vigil.school.models import Camera

    ids = list(Camera.objects.order_by("pk").values_list("pk", flat=True))[: meta["cameras"]]
    first = datetime.fromtimestamp(meta["first"], UTC)
    out = []
    for i in range(samples + 5):
        cam = rng.choice(ids)
        day = coverage.local_day(first) + timedelta(
            days=1 + rng.randrange(max(1, meta["days"] - 1))
        )
        ds, de = coverage.day_bounds(day)
        t0 = time.perf_counter()
        t = catalog.camera_timeline(cam, ds, de)
        elapsed = (time.perf_counter() - t0) * 1000
        assert len(t.segments) > 8000, len(t.segments)
        if i >= 5:  # warm-up
            out.append(elapsed)
    return out


def measure_coverage(meta: dict[str, Any]) -> tuple[float, int]:
    from vigil.retention import coverage

    first = datetime.fromtimestamp(meta["first"], UTC)
    day = coverage.local_day(first) + timedelta(days=max(1, meta["days"] // 2))
    t0 = time.perf_counter()
    rows = coverage.compute_day(day)
    elapsed = time.perf_counter() - t0
    assert len(rows) == meta["cameras"]
    assert all(r.recorded_seconds > 80000 for r in rows), "a whole day per camera"
    return elapsed, len(rows)


def measure_sweep(data_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection, transaction

    from vigil.recording.models import DeletionIntent, Segment
    from vigil.retention import services
    from vigil.retention.models import VolumeState
    from vigil.school.models import StorageVolume

    vol = StorageVolume.objects.select_related("recorder").get(recorder__code="NVR-01")
    other = StorageVolume.objects.get(recorder__code="NVR-02")
    writer_camera = other.recorder.cameras.order_by("pk").first()
    assert writer_camera is not None
    used = Segment.objects.filter(volume=vol).count()
    # Declared capacity = what the volume holds: the sweep must make room.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(sum(size_bytes), 0) FROM recording_segment WHERE volume_id = %s",
            [vol.pk],
        )
        held = int(cur.fetchone()[0])
    original_capacity = vol.capacity_bytes
    StorageVolume.objects.filter(pk=vol.pk).update(capacity_bytes=held)
    vol.refresh_from_db()
    VolumeState.objects.filter(volume=vol).delete()
    # Keep what the sweep will delete, to put it back afterwards.
    columns = [f.column for f in Segment._meta.concrete_fields]
    limit = settings.VIGIL.retention.max_deletions_per_sweep
    with connection.cursor() as cur:
        cols = ", ".join(f'"{c}"' for c in columns)
        cur.execute(
            f"SELECT {cols} FROM recording_segment WHERE volume_id = %s "  # noqa: S608
            "ORDER BY start, id LIMIT %s",
            [vol.pk, limit + 1000],
        )
        saved = cur.fetchall()

    ctx = mp.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(
        target=writer,
        args=(str(data_dir / "vigil.sqlite3"), other.pk, writer_camera.pk, stop, ready, out),
    )
    proc.start()
    ready.wait(30)
    time.sleep(3.0)  # baseline writes without a sweep
    t_start = time.monotonic()
    result = services.sweep(vol)
    t_end = time.monotonic()
    time.sleep(1.0)
    stop.set()
    samples: list[tuple[float, float]] = out.get(timeout=60)
    proc.join(30)

    during = [ms for t, ms in samples if t_start <= t <= t_end]
    before = [ms for t, ms in samples if t < t_start]
    # Put the catalog back as it was.
    with transaction.atomic(), connection.cursor() as cur:
        placeholders = ", ".join(["%s"] * len(columns))
        cur.executemany(
            f"INSERT OR IGNORE INTO recording_segment ({cols}) VALUES ({placeholders})",  # noqa: S608
            saved,
        )
    DeletionIntent.objects.all().delete()
    StorageVolume.objects.filter(pk=vol.pk).update(capacity_bytes=original_capacity)
    VolumeState.objects.all().delete()
    assert Segment.objects.filter(volume=vol).count() == used
    return {
        "sweep_seconds": round(t_end - t_start, 3),
        "deleted_segments": result.deleted_segments,
        "batches": result.batches,
        "floor_at_risk": result.floor_at_risk,
        "writes_during": len(during),
        "write_max_ms": max(during) if during else float("nan"),
        "write_p99_ms": percentile(during, 0.99),
        "write_p50_ms": percentile(during, 0.5),
        "baseline_write_max_ms": max(before) if before else float("nan"),
        "baseline_write_p50_ms": percentile(before, 0.5),
    }


def measure_plan() -> float:
    from vigil.retention import capacity
    from vigil.retention.models import VolumeState

    VolumeState.objects.update(used_recounted_at=None)  # count the catalogue in full
    t0 = time.perf_counter()
    capacity.build_plan(declared_only=True)
    return time.perf_counter() - t0


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores {cpu}{mem}, {versions}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=86)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--segment-seconds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=300, help="camera-days per timeline run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached catalog")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    data_dir = cache_dir(args)
    meta = build_catalog(args, data_dir)
    setup_django(data_dir)
    rng = random.Random(args.seed)
    runs: list[dict[str, Any]] = []
    for r in range(args.repeats):
        timeline = measure_timelines(meta, args.samples, rng)
        cov_s, _n = measure_coverage(meta)
        sweep = measure_sweep(data_dir, meta)
        plan_s = measure_plan()
        run = {
            "timeline_p50_ms": percentile(timeline, 0.5),
            "timeline_p95_ms": percentile(timeline, 0.95),
            "timeline_max_ms": max(timeline),
            "coverage_day_s": cov_s,
            "plan_s": plan_s,
            **sweep,
        }
        runs.append(run)
        print(
            f"run {r + 1}: timeline p50 {run['timeline_p50_ms']:.1f} ms "
            f"p95 {run['timeline_p95_ms']:.1f} ms; coverage {cov_s:.2f} s; "
            f"sweep {sweep['sweep_seconds']:.1f} s ({sweep['deleted_segments']} segments, "
            f"{sweep['batches']} batches), writes during it: max {sweep['write_max_ms']:.1f} ms "
            f"p99 {sweep['write_p99_ms']:.1f} ms (n={sweep['writes_during']}); "
            f"plan {plan_s:.2f} s",
            flush=True,
        )
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in runs[0]
        if isinstance(runs[0][k], int | float)
    }
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "catalog": meta,
        "repeats": args.repeats,
        "samples": args.samples,
        "median": med,
        "runs": runs,
    }
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"retention-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(summary, indent=2)
    )
    targets = [
        ("camera-day timeline p95", med["timeline_p95_ms"], "ms", 50),
        ("all-camera daily coverage", med["coverage_day_s"], "s", 2),
        ("longest recording write during the sweep", med["write_max_ms"], "ms", 100),
    ]
    print()
    print(f"Catalog: {meta['rows']:,} segments ({meta['cameras']} cameras x {meta['days']} days), "
          f"{meta['db_bytes'] / 1e9:.1f} GB. Machine: {summary['machine']}")  # fmt: skip
    print(f"Median of {args.repeats} run(s):")
    ok = True
    for name, value, unit, target in targets:
        passed = value < target
        ok = ok and passed
        verdict = "ok" if passed else "MISSED"
        print(f"  {name:<42} {value:8.2f} {unit:<2}  target < {target} {unit}  {verdict}")
    print(f"  {'camera-day timeline p50':<42} {med['timeline_p50_ms']:8.2f} ms")
    print(f"  {'recording write p99 during the sweep':<42} {med['write_p99_ms']:8.2f} ms")
    print(f"  {'recording write max without a sweep':<42} {med['baseline_write_max_ms']:8.2f} ms")
    deleted = f"({med['deleted_segments']:.0f})"
    print(f"  {'sweep (segments deleted)':<42} {med['sweep_seconds']:8.2f} s  {deleted}")
    print(f"  {'storage plan with a full recount':<42} {med['plan_s']:8.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
