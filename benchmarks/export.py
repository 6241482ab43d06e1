#!/usr/bin/env python3
"""Evidence export benchmark (issue 6): one hour of one camera into a signed package,
against a plain copy of the same segment files; and redaction throughput.

    .venv/bin/python benchmarks/export.py                 # 1 h, 5 repeats, redaction
    .venv/bin/python benchmarks/export.py --minutes 10 --repeats 3 --no-redaction

What it does:
1. Builds (once; cached in .cache/export-bench-<hash>/) one hour of a 1080p H.264 camera at
   ~2 Mbit/s, 10 fps, keyframe every 2 s (the simulator's main-stream fixture from the
   sample footage, looped), written by the recorder's own ``SegmentWriter`` in 10-second
   fragmented-MP4 segments: 360 files, ~900 MB, with their ingest SHA-256.
2. In each repeat, in alternating order:
   * **copy**: ``shutil.copyfile`` of every segment into an empty directory, each file
     fsynced, then the directory (a copy that a power cut can take back is no copy);
   * **package**: what the export worker does, minus its database rows: plan the clip,
     assemble it by stream copy (checking every segment against its ingest hash, hashing
     the output), write the BagIt-like tag files and the manifest, sign it with an
     Ed25519 key, write the first custody line, fsync everything.
   Wall time and CPU time (all threads) of each; the ratio package/copy per repeat.
3. Redaction: detection + tracking (pass 1) alone, and the whole release (pass 1, blur,
   watermark, H.264 encode) of 20 s of the 1080p stream and of the 2.9 s walking-faces
   clip (480x270); frames per CPU-second = frames per second per core.

Target: package ≤ 1.5x the copy's time (median of the per-repeat ratios). Raw results go
to benchmarks/results/export-<time>.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_hour(minutes: int) -> list[Any]:
    from vigil.media.clock import StreamClock
    from vigil.media.export import SourceSegment
    from vigil.media.rtp import Frame
    from vigil.media.segment import SegmentWriter
    from vigil.media.simulator.fixtures import MAIN_H264, build_fixture, cache_dir
    from vigil.media.tests.helpers import fixture_frames

    fixture = build_fixture(MAIN_H264)
    key = hashlib.sha256(f"{fixture.video}:{minutes}:v1".encode()).hexdigest()[:12]
    root = cache_dir() / f"export-bench-{key}"
    index = root / "index.json"
    if index.exists():
        rows = json.loads(index.read_text())
        return [SourceSegment(Path(r[0]), r[1], r[2], r[3]) for r in rows]
    shutil.rmtree(root, ignore_errors=True)
    volume = root / "volume"
    frames = fixture_frames(fixture)
    step = round(90000 / MAIN_H264.fps)
    now = [0.0]
    clock = StreamClock(90000, wall=lambda: T0 + now[0], mono=lambda: now[0])
    writer = SegmentWriter(volume, "CAM-001", clock=clock, target_duration=10.0)
    done = []
    n = len(frames)
    print(f"building {minutes} min of 1080p footage in {root} ...", flush=True)
    for i in range(round(minutes * 60 * MAIN_H264.fps)):
        f = frames[i % n]
        frame = Frame(0, f.ticks + (i // n) * n * step, f.data, f.keyframe, f.params)
        now[0] = frame.ticks / 90000
        seg = writer.write(frame)
        if seg is not None:
            done.append(seg.finish())
    last = writer.close()
    if last is not None:
        done.append(last.finish())
    rows = [(str(d.path), d.start_utc, d.end_utc, d.sha256) for d in done]
    index.write_text(json.dumps(rows))
    return [SourceSegment(Path(r[0]), r[1], r[2], r[3]) for r in rows]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_copy(segments: list[Any], out: Path) -> None:
    out.mkdir()
    for s in segments:
        dst = out / s.path.name
        shutil.copyfile(s.path, dst)
        _fsync(dst)
    _fsync(out)


def signed_package(segments: list[Any], out: Path, key: Any, start: float, end: float) -> str:
    from cryptography.hazmat.primitives import serialization

    from vigil.access import package as pkg
    from vigil.media.export import assemble_clip, plan_spans

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    staging = out.with_name(out.name + ".staging")
    (staging / "data").mkdir(parents=True)
    clips = []
    payload = {}
    for i, span in enumerate(plan_spans(segments, start, end)):
        name = f"CAM-001_{i:02d}.mp4"
        result = assemble_clip(span, staging / "data" / name)
        payload[f"data/{name}"] = (result.sha256, result.size)
        clips.append(
            {
                "file": f"data/{name}",
                "camera": "CAM-001",
                "start_utc": result.start_utc,
                "end_utc": result.end_utc,
                "sha256": result.sha256,
                "sources": [
                    {
                        "segment": u.segment.path.name,
                        "ingest_sha256": u.segment.sha256,
                        "embedded": {"offset": u.embedded_at, "size": u.size}
                        if u.embedded_at is not None
                        else None,
                        "checked_at_export": u.checked_sha256 == u.segment.sha256
                        if u.checked_sha256
                        else None,
                    }
                    for u in result.sources
                ],
            }
        )
    manifest = pkg.write_package(
        staging,
        {"package": out.name, "clips": clips},
        payload,
        sign=key.sign,
        public_key=raw,
        readme="benchmark\n",
    )
    line, _digest = pkg.custody_line(
        seq=1,
        prev=pkg.sha256_hex(manifest),
        at=datetime.now(UTC).isoformat(),
        event="created",
        actor="benchmark",
        detail={},
        sign=key.sign,
    )
    pkg.append_custody(staging, line)
    os.replace(staging, out)
    _fsync(out.parent)
    return base64.b64encode(hashlib.sha256(manifest).digest()).decode()


def measure(fn: Any) -> tuple[float, float]:
    c, t = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t, cpu() - c


def bench_export(segments: list[Any], repeats: int, work: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    start, end = segments[0].start_utc, segments[-1].end_utc
    size = sum(s.path.stat().st_size for s in segments)
    for s in segments:  # warm the page cache alike for both
        s.path.read_bytes()
    runs = []
    for r in range(repeats):
        order = ["copy", "package"] if r % 2 == 0 else ["package", "copy"]
        res: dict[str, tuple[float, float]] = {}
        for what in order:
            target = work / f"{what}-{r}"
            shutil.rmtree(target, ignore_errors=True)
            if what == "copy":
                res[what] = measure(lambda t=target: plain_copy(segments, t))
            else:
                res[what] = measure(lambda t=target: signed_package(segments, t, key, start, end))
            shutil.rmtree(target, ignore_errors=True)
        runs.append(
            {
                "copy_s": res["copy"][0],
                "copy_cpu_s": res["copy"][1],
                "package_s": res["package"][0],
                "package_cpu_s": res["package"][1],
                "ratio": res["package"][0] / res["copy"][0],
            }
        )
        print(
            f"  repeat {r + 1}: copy {res['copy'][0]:.2f} s (cpu {res['copy'][1]:.2f}), "
            f"package {res['package'][0]:.2f} s (cpu {res['package'][1]:.2f}), "
            f"ratio {runs[-1]['ratio']:.2f}",
            flush=True,
        )
    med = lambda k: statistics.median(x[k] for x in runs)  # noqa: E731
    return {
        "segments": len(segments),
        "bytes": size,
        "seconds_of_footage": end - start,
        "runs": runs,
        "median_copy_s": med("copy_s"),
        "median_package_s": med("package_s"),
        "median_ratio": med("ratio"),
        "median_copy_cpu_s": med("copy_cpu_s"),
        "median_package_cpu_s": med("package_cpu_s"),
    }


def bench_redaction(clip: Path, frames: int, fps: float, work: Path) -> dict[str, Any]:
    import cv2

    from vigil.access.release import _LazyClip, redact_clip
    from vigil.vision.redact import RedactConfig, plan_redaction

    cv2.setNumThreads(1)
    n = [0]
    lazy = _LazyClip(clip, frames, 540, lambda i: n.__setitem__(0, i))
    wall, cpu_s = measure(lambda: plan_redaction(lazy, RedactConfig()))
    out = work / f"released-{clip.stem}.mp4"
    out.unlink(missing_ok=True)
    wall2, cpu2 = measure(
        lambda: redact_clip(
            clip, out, frames=frames, fps=fps, watermark_lines=["Yêu cầu YC-2026-0001", "x"]
        )
    )
    return {
        "clip": clip.name,
        "frames": frames,
        "detect_wall_s": wall,
        "detect_cpu_s": cpu_s,
        "detect_fps_per_core": frames / cpu_s,
        "release_wall_s": wall2,
        "release_cpu_s": cpu2,
        "release_fps_per_core": frames / cpu2,
        "release_fps_wall": frames / wall2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-redaction", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    segments = build_hour(args.minutes)
    work = ROOT / ".cache" / "export-bench-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"export of {args.minutes} min ({len(segments)} segments):", flush=True)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "date": datetime.now(UTC).isoformat(),
        "export": bench_export(segments, args.repeats, work),
    }
    e = results["export"]
    print(
        f"median: copy {e['median_copy_s']:.2f} s, package {e['median_package_s']:.2f} s, "
        f"ratio {e['median_ratio']:.2f} (target <= 1.5)"
    )
    if not args.no_redaction:
        from vigil.media.export import assemble_clip, plan_spans
        from vigil.media.simulator.fixtures import FixtureSpec, build_fixture

        clip = work / "main-20s.mp4"
        span = plan_spans(segments, segments[0].start_utc, segments[0].start_utc + 20)[0]
        r = assemble_clip(span, clip)
        rows = [bench_redaction(clip, r.frames - r.preroll_frames, 10.0, work)]
        faces = FixtureSpec(
            name="faces-walking", source="face-demographics-walking.gif", codec="h264",
            width=480, height=270, fps=12.0, bitrate_kbps=1500, duration=2.9,
        )  # fmt: skip
        from vigil.access.tests.footage import fixture_frames as frames_of
        from vigil.media.clock import StreamClock
        from vigil.media.segment import SegmentWriter

        build_fixture(faces)
        frames, _step = frames_of(faces)
        vol = work / "faces"
        now = [0.0]
        writer = SegmentWriter(vol, "CAM-002", clock=StreamClock(
            90000, wall=lambda: T0 + now[0], mono=lambda: now[0]))  # fmt: skip
        done = []
        from vigil.media.export import SourceSegment

        for f in frames:
            now[0] = f.ticks / 90000
            seg = writer.write(f)
            if seg:
                done.append(seg.finish())
        last = writer.close()
        if last:
            done.append(last.finish())
        srcs = [SourceSegment(d.path, d.start_utc, d.end_utc, d.sha256) for d in done]
        gif_clip = work / "faces.mp4"
        r = assemble_clip(plan_spans(srcs, T0, T0 + 10)[0], gif_clip)
        rows.append(bench_redaction(gif_clip, r.frames - r.preroll_frames, 12.0, work))
        results["redaction"] = rows
        for row in rows:
            print(
                f"redaction {row['clip']}: {row['frames']} frames; detection+tracking "
                f"{row['detect_fps_per_core']:.2f} frames/s per core; whole release "
                f"{row['release_fps_per_core']:.2f} frames/s per core "
                f"({row['release_fps_wall']:.2f} wall)"
            )
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"export-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2)
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if e["median_ratio"] <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
