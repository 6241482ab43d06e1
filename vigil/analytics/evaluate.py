"""System-level accuracy of motion events and tamper alerts, end to end.

    python -m vigil.analytics.evaluate [--quick] [--seeds 4] [--first-seed 0] [--json]

The vision engine's evaluation (``python -m vigil.vision.evaluate``) scores the
detectors on decoded frames. This one runs the same labelled set through what
``vigil analyze`` does in production and scores what ends up in the database:

1. frames of the real footage (with the synthetic tampering of the scenario) are
   brought to 640x360 and **encoded as a camera sub-stream** (H.264, no B-frames, a
   keyframe every 2 s, ~450 kbit/s, :mod:`vigil.analytics.clips`);
2. the encoded access units go, as the RTSP depacketizer hands them out, through
   :class:`~vigil.analytics.pipeline.CameraPipeline` (decoder at 5 fps + analyser) and
   :func:`~vigil.analytics.runtime.store_output` into a real database (a throw-away
   data directory with the demo school): motion events with thumbnails, ``tamper_*``
   alerts with snapshots through the alerts service;
3. motion events are read back with the desk's search (``search_motion`` as the demo
   security guard: permission decision and audit entry included); tamper alerts are
   read from the alerts table (the times are the stream times the analyser put in the
   alert: ``raised_at`` minus the labelled start is the time to detect).

Between scenarios the desk resolves every alert it got (``alerts.services.resolve``),
so de-duplication does not merge alerts of different scenarios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def _setup(data_dir: Path | None) -> None:
    os.environ["VIGIL_DATA_DIR"] = str(data_dir or tempfile.mkdtemp(prefix="vigil-eval-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from vigil.core.demo import seed

    seed()


def run(quick: bool, seeds: int, first_seed: int) -> dict[str, Any]:
    import cv2
    from django.utils import timezone

    from vigil.accounts.actor import Actor
    from vigil.accounts.models import User
    from vigil.alerts import services as alerts
    from vigil.alerts.models import Alert
    from vigil.analytics import services
    from vigil.analytics.clips import encode, samples, to_sub
    from vigil.analytics.pipeline import CameraPipeline
    from vigil.analytics.runtime import store_output
    from vigil.school.models import Camera
    from vigil.vision import evaluate as engine
    from vigil.vision.decode import probe, read_video
    from vigil.vision.footage import SAMPLE_VIDEOS, footage_path
    from vigil.vision.motion import MotionEvent
    from vigil.vision.synthetic import render_scenario

    cv2.setNumThreads(1)
    guard = Actor(User.objects.get(username="baove"), via="cli")
    now = timezone.now().replace(microsecond=0)

    def feed(camera: Camera, frames: Sequence[Any], fps: float, base: float) -> None:
        pipeline = CameraPipeline(services.analyser_config(camera), fps=5.0)
        event_ids: dict[int, int] = {}
        next_signal = base + 1.0
        last = base
        for s in samples(encode((to_sub(f) for f in frames), fps)):
            ts = base + s.ts
            out = pipeline.feed(s.data, ts, s.keyframe, s.params)
            if ts >= next_signal:
                next_signal = ts + 1.0
                out.tamper.extend(pipeline.check_signal(ts))
            if not out.empty:
                store_output(camera, out, event_ids)
            last = ts
        flush = pipeline.restart_stream()
        if not flush.empty:
            store_output(camera, flush, event_ids)
        del last

    # ------------------------------------------------------------------ motion
    motion_results = []
    labels = engine.load_motion_labels()
    motion_cam = Camera.objects.get(code="CAM-001")
    for i, video in enumerate(labels["videos"]):
        path = footage_path(video["file"])
        if path is None:
            continue
        fps = probe(path)["fps"] or 10.0
        frames = [f.luma for f in read_video(path)]
        base_dt = now - timedelta(hours=3) + timedelta(minutes=10 * i)
        base = base_dt.timestamp()
        feed(motion_cam, frames, fps, base)
        found = services.search_motion(
            guard,
            start=base_dt,
            end=base_dt + timedelta(seconds=len(frames) / fps + 5),
            cameras=[motion_cam],
        )
        events = [
            MotionEvent(
                seq=e.pk,
                start=e.start.timestamp() - base,
                end=(e.end.timestamp() - base) if e.end else None,
                peak_ts=e.peak_at.timestamp() - base,
                peak_score=e.peak_score,
                zones=(),
                box=(0.0, 0.0, 1.0, 1.0),
                motion_frames=e.motion_frames,
            )
            for e in sorted(found.events, key=lambda e: e.start)
        ]
        motion_results.append(engine.score_motion(video, events))

    # ------------------------------------------------------------------ tamper
    tamper_cam = Camera.objects.get(code="CAM-040")
    scenarios = engine.tamper_scenarios(
        1 if quick else seeds,
        videos=SAMPLE_VIDEOS[:2] if quick else SAMPLE_VIDEOS,
        first_seed=first_seed,
    )
    cache = engine._SourceCache()
    results = []
    base_dt = now - timedelta(days=2)
    for k, sc in enumerate(scenarios):
        if footage_path(sc.source) is None:
            continue
        src, src_fps = cache.get(sc.source)
        frames = [f for _ts, f in render_scenario(sc, src, src_fps, src_fps)]
        base = (base_dt + timedelta(minutes=5 * k)).timestamp()
        last_pk = Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        feed(tamper_cam, frames, src_fps, base)
        got: list[tuple[str, float, float, float | None]] = []
        for a in Alert.objects.filter(camera=tamper_cam, pk__gt=last_pk).order_by("pk"):
            detail = json.loads(a.detail_json)
            started = datetime.fromisoformat(detail["started_at"]).timestamp() - base
            raised = datetime.fromisoformat(detail["raised_at"]).timestamp() - base
            got.append((a.cause.removeprefix("tamper_"), started, raised, None))
            if a.is_open:
                alerts.resolve(guard, a, "evaluation: scenario finished")
        ttd = None
        if sc.cause is not None:
            hits = [
                g
                for g in got
                if g[0] == sc.cause and sc.start <= g[2] <= sc.start + engine.DETECT_WITHIN
            ]
            ttd = hits[0][2] - sc.start if hits else None
        engine._DURATIONS[sc.name] = sc.duration
        results.append(
            engine.ScenarioResult(
                name=sc.name,
                source=sc.source,
                cause=sc.cause,
                start=sc.start,
                end=sc.end,
                alerts=got,
                detected=ttd is not None,
                ttd=ttd,
                clear_delay=None,
            )
        )
    rows, extra = engine.summarise_tamper(results)
    return {"motion": motion_results, "rows": rows, "extra": extra, "results": results}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="2 videos, 1 seed per cause")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    from vigil.vision.footage import SAMPLE_VIDEOS, footage_path

    if footage_path(SAMPLE_VIDEOS[0]) is None:
        print("sample footage not found (set VIGIL_FOOTAGE_DIR)", file=sys.stderr)
        return 2
    _setup(args.data_dir)
    import logging

    logging.getLogger("vigil").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    out = run(args.quick, args.seeds, args.first_seed)
    elapsed = time.perf_counter() - t0
    from vigil.vision import evaluate as engine

    if args.json:
        print(
            json.dumps(
                {
                    "motion": [asdict(m) for m in out["motion"]],
                    "tamper": [
                        asdict(r) | {"recall": r.recall, "precision": r.precision}
                        for r in out["rows"]
                    ],
                    "negatives": out["extra"],
                    "misses": [asdict(r) for r in out["results"] if r.cause and not r.detected],
                    "false_alarms": [
                        asdict(r) for r in out["results"] if r.cause is None and r.alerts
                    ],
                    "elapsed_s": elapsed,
                },
                indent=1,
                default=str,
            )
        )
    else:
        print(engine.format_report(out["motion"], out["rows"], out["extra"]))
        for r in out["results"]:
            if r.cause and not r.detected:
                print(f"missed: {r.name} alerts={r.alerts}")
            if r.cause is None and r.alerts:
                print(f"false alarm: {r.name} alerts={r.alerts}")
        ttds = [r.ttd for r in out["results"] if r.ttd is not None]
        if ttds:
            print(
                f"\ntime to detect over all causes: median {statistics.median(ttds):.1f} s, "
                f"max {max(ttds):.1f} s"
            )
        print(f"({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
