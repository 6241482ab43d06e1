"""Analysis throughput as deployed: the same frames per core, then 86 cameras live.

    python benchmarks/analytics.py frames [--repeats 5] [--json out.json]
    python benchmarks/analytics.py live [--cameras 86] [--seconds 120] [--json out.json]

``frames`` measures, on the same frames, in one single-threaded process (CPU time,
median of ``--repeats``): decode alone (the floor) of a camera-like sub-stream fed as
the RTSP depacketizer hands it out (MP4 samples, ``avcC`` extradata), decode + the full
analysis of ``vigil analyze`` (``CameraPipeline``: 5 fps picked from the 10 fps
stream, motion + tamper + quality), the motion detector alone against a plain OpenCV
frame-difference detector, and keyframe-only decoding.

``live`` runs the real thing on this machine: the RTSP simulator serving the demo
school's cameras (1080p main streams and 640x360 sub-streams from the real footage),
``vigil record --all`` recording every main stream and ``vigil analyze`` analysing
every sub-stream, as three processes, for ``--seconds`` after a warm-up. CPU comes from
/proc per process tree; whether analysis keeps up from its own counters (frames
analysed against cameras x 5 fps x time, lag from arrival to analysed, frames skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CAMERAS = 86
FPS = 5.0


# --------------------------------------------------------------------------- frames
def frames_suite(repeats: int, seconds: float) -> dict[str, Any]:
    import cv2
    import numpy as np
    from vision import BaselineMotion, timed

    from vigil.analytics.clips import encode, samples, to_sub
    from vigil.analytics.pipeline import CameraPipeline
    from vigil.vision.decode import PacketDecoder, read_video
    from vigil.vision.footage import footage_path
    from vigil.vision.motion import MotionDetector
    from vigil.vision.pipeline import AnalyserConfig
    from vigil.vision.quality import CameraSpec

    cv2.setNumThreads(1)
    src = footage_path("one-by-one-person-detection.mp4")
    if src is None:
        raise SystemExit("sample footage not found (set VIGIL_FOOTAGE_DIR)")
    frames = [to_sub(np.ascontiguousarray(f.luma)) for f in read_video(src, max_seconds=seconds)]
    clip = list(samples(encode(frames, 10.0)))
    kbps = sum(len(s.data) for s in clip) * 8 / (len(clip) / 10.0) / 1000
    extradata = clip[0].params.config_record
    base = 1_800_000_000.0
    res: dict[str, Any] = {"frames": len(clip), "seconds": len(clip) / 10.0, "kbps": round(kbps)}

    def decode_all() -> int:
        dec = PacketDecoder("h264", fps=None, extradata=extradata)
        return sum(len(dec.decode(s.data, base + s.ts, s.keyframe)) for s in clip)

    def pipeline() -> int:
        p = CameraPipeline(AnalyserConfig(spec=CameraSpec(640, 360)), fps=FPS)
        n = 0
        for s in clip:
            n += p.feed(s.data, base + s.ts, s.keyframe, s.params).frames
        return n

    def keyframes() -> int:
        dec = PacketDecoder("h264", fps=None, keyframes_only=True, extradata=extradata)
        return sum(len(dec.decode(s.data, base + s.ts, s.keyframe)) for s in clip)

    # paired runs: decode alone and decode + analysis alternate, per repeat
    t_dec_runs, t_pipe_runs = [], []
    n_dec = n_pipe = 0
    for _ in range(repeats):
        t, n_dec = timed(decode_all, 1)
        t_dec_runs.append(t)
        t, n_pipe = timed(pipeline, 1)
        t_pipe_runs.append(t)
    t_dec, t_pipe = statistics.median(t_dec_runs), statistics.median(t_pipe_runs)
    overheads = [(p - d) / d for d, p in zip(t_dec_runs, t_pipe_runs, strict=True)]
    res["decode_fps_per_core"] = n_dec / t_dec
    res["pipeline_analysed"] = n_pipe
    res["pipeline_stream_fps_per_core"] = n_dec / t_pipe  # stream frames handled per CPU s
    res["pipeline_analysed_fps_per_core"] = n_pipe / t_pipe
    res["analysis_overhead"] = (t_pipe - t_dec) / t_dec
    res["analysis_overhead_runs"] = [round(o, 3) for o in overheads]
    t_key, n_key = timed(keyframes, repeats)
    res["keyframes"] = n_key
    res["keyframe_decode_s_per_stream_s"] = t_key / res["seconds"]

    # motion alone vs the OpenCV baseline, on the same decoded frames (the 5 fps picks)
    dec = PacketDecoder("h264", fps=FPS, extradata=extradata)
    lumas = [
        np.ascontiguousarray(f.luma)
        for s in clip
        for f in dec.decode(s.data, base + s.ts, s.keyframe)
    ]

    def ours() -> int:
        det = MotionDetector()
        for i, luma in enumerate(lumas):
            det.detect(luma, i / FPS)
        return len(lumas)

    def baseline() -> int:
        det = BaselineMotion()
        for luma in lumas:
            det.detect(luma)
        return len(lumas)

    t_ours, n = timed(ours, repeats)
    t_base, _ = timed(baseline, repeats)
    res["motion_fps_per_core"] = n / t_ours
    res["opencv_baseline_fps_per_core"] = n / t_base
    # what 86 cameras at 5 fps (10 fps sub-streams) cost in cores
    stream_s = res["seconds"]
    res["cores_86_decode"] = CAMERAS * t_dec / stream_s
    res["cores_86_pipeline"] = CAMERAS * t_pipe / stream_s
    res["cores_86_keyframes_only"] = CAMERAS * t_key / stream_s
    return res


# --------------------------------------------------------------------------- live
def _vigil(data: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_delay(pids: list[int]) -> float:
    """Seconds the threads of these process trees spent runnable but waiting for a CPU
    (/proc/<pid>/task/<tid>/schedstat): how much the machine's other work held them up."""
    from recording import tree

    total = 0
    for pid in tree(pids):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def live_suite(cameras: int, seconds: float, warmup: float) -> dict[str, Any]:
    from recording import cpu_seconds, pss_bytes

    from vigil.media.simulator import free_port

    data = Path(tempfile.mkdtemp(prefix="vigil-bench-analytics-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        env = {**os.environ, "VIGIL_DATA_DIR": str(data)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run(
            [sys.executable, "-m", "vigil.cli", "init", "--demo"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        con = sqlite3.connect(data / "vigil.sqlite3")
        con.execute(
            "UPDATE school_camera SET main_url = replace(main_url, ':8554/', ?), "
            "sub_url = replace(sub_url, ':8554/', ?)",
            (f":{port}/", f":{port}/"),
        )
        con.commit()
        con.close()
        stats = data / "analyze-stats.json"
        procs["simulator"] = _vigil(
            data, "simulate", "--demo", "--cameras", str(cameras), "--port", str(port),
            log=data / "simulate.log",
        )  # fmt: skip
        time.sleep(15)  # fixtures are cached; the server starts in a few seconds
        procs["record"] = _vigil(
            data, "record", "--all", "--demo-cameras", str(cameras), log=data / "record.log"
        )
        procs["analyze"] = _vigil(
            data, "analyze", "--demo-cameras", str(cameras), "--stats-file", str(stats),
            log=data / "analyze.log",
        )  # fmt: skip
        time.sleep(warmup)
        pids = {k: [p.pid] for k, p in procs.items()}
        for name, p in procs.items():
            if p.poll() is not None:
                raise SystemExit(
                    f"{name} exited early: {(data / f'{name}.log').read_text()[-2000:]}"
                )

        def read_stats() -> dict[str, Any]:
            """The analysis processes' figures, summed over their shares."""
            parts = [json.loads(f.read_text()) for f in sorted(data.glob("analyze-stats.json*"))]
            if not parts:
                return {}
            n = sum(max(1, x["analysed"]) for x in parts)
            return {
                "elapsed_s": max(x["elapsed_s"] for x in parts),
                "online": sum(x["online"] for x in parts),
                "analysed": sum(x["analysed"] for x in parts),
                "dropped": sum(x["dropped"] for x in parts),
                "lag_mean_ms": round(
                    sum(x["lag_mean_ms"] * max(1, x["analysed"]) for x in parts) / n, 1
                ),
                "lag_max_ms": max(x["lag_max_ms"] for x in parts),
                "worker_busy_s": [b for x in parts for b in x["worker_busy_s"]],
                "processes": len(parts),
            }

        def snap() -> dict[str, Any]:
            s = read_stats()
            return {
                "t": time.monotonic(),
                "cpu": {k: cpu_seconds(v) for k, v in pids.items()},
                "wait": {k: run_delay(v) for k, v in pids.items()},
                "stats": s,
            }

        a = snap()
        samples_online = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(5)
            samples_online.append(read_stats().get("online", 0))
        b = snap()
        pss = {k: pss_bytes(v) for k, v in pids.items()}
        wall = b["t"] - a["t"]
        sa, sb = a["stats"], b["stats"]
        analysed = sb["analysed"] - sa["analysed"]
        online = min(samples_online) if samples_online else 0
        expected = online * FPS * (sb["elapsed_s"] - sa["elapsed_s"])
        segments = (
            sqlite3.connect(data / "vigil.sqlite3")
            .execute("SELECT count(*) FROM recording_segment")
            .fetchone()[0]
        )
        return {
            "cameras": cameras,
            "seconds": round(wall, 1),
            "cores": {k: round((b["cpu"][k] - a["cpu"][k]) / wall, 3) for k in pids},
            "pss_mb": {k: round(v / 1e6) for k, v in pss.items()},
            # seconds per second that runnable threads waited for a CPU (other work)
            "cpu_wait": {k: round((b["wait"][k] - a["wait"][k]) / wall, 3) for k in pids},
            "analysis_online_min": online,
            "analysed": analysed,
            "expected": round(expected),
            "kept_up": round(analysed / expected, 3) if expected else None,
            "dropped": sb["dropped"] - sa["dropped"],
            "lag_mean_ms": sb["lag_mean_ms"],
            "lag_max_ms": sb["lag_max_ms"],
            "analysis_threads_busy": [
                round((y - x) / wall, 3)
                for x, y in zip(sa["worker_busy_s"], sb["worker_busy_s"], strict=True)
            ],
            "segments_recorded": segments,
            "analysis_processes": sb.get("processes"),
            "loadavg": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
    finally:
        for name in ("analyze", "record", "simulator"):
            p = procs.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("frames")
    f.add_argument("--repeats", type=int, default=5)
    f.add_argument("--seconds", type=float, default=139.0)
    f.add_argument("--json", type=Path)
    live = sub.add_parser("live")
    live.add_argument("--cameras", type=int, default=CAMERAS)
    live.add_argument("--seconds", type=float, default=120.0)
    live.add_argument("--warmup", type=float, default=30.0)
    live.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.what == "frames":
        res = frames_suite(args.repeats, args.seconds)
    else:
        res = live_suite(args.cameras, args.seconds, args.warmup)
    text = json.dumps(res, indent=1, default=float)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
