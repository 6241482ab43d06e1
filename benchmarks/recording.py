"""Recording benchmark: Vigil's engine vs ``ffmpeg -c copy -f segment`` per camera.

Starts the camera simulator with N cameras (1080p H.264 ~2 Mbit/s, 10 fps, real
footage), then for each repeat:

1. runs one ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 10``
   process per camera for T seconds;
2. runs the Vigil recorder command on the same streams for T seconds (pluggable with
   ``--vigil-cmd``; placeholders ``{python}``, ``{volume}``, ``{cameras_json}``,
   ``{workers}``);

and measures, over the T-second window after a warm-up, CPU seconds (utime+stime of the
whole process tree from /proc, children included) and PSS (``/proc/<pid>/smaps_rollup``,
summed over the tree, median of samples). Prints per-camera figures, the extrapolation
to 86 cameras (linear fit over the N values) and Vigil/ffmpeg ratios (median over
repeats). Targets: CPU ratio <= 1.1, memory ratio <= 0.5.

    .venv/bin/python benchmarks/recording.py --cameras 8 32 --seconds 60 --repeats 3
    .venv/bin/python benchmarks/recording.py --vigil-cmd engine ...   # engine without Django
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vigil.media.simulator import Simulator

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The real `vigil record` (database, catalog writes, health) on the same cameras.
DEFAULT_VIGIL = (
    "{python} benchmarks/vigil_record.py --volume {volume} --cameras-json {cameras_json}"
)
# The media engine alone, without Django: `--vigil-cmd engine`.
ENGINE_ONLY = (
    "{python} -m vigil.media.record --volume {volume} --cameras-json {cameras_json} "
    "--workers {workers}"
)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants."""
    kids = _children_map()
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime (+ waited-for children) of the process trees rooted at ``pids``."""
    total = 0
    for pid in tree(pids):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def pss_bytes(pids: list[int]) -> int:
    """Summed PSS of the process trees rooted at ``pids``."""
    total = 0
    for pid in tree(pids):
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


@dataclass
class Measure:
    """One run of one recorder for N cameras."""

    name: str
    cameras: int
    seconds: float
    cpu: float  # CPU seconds in the window
    pss: float  # bytes, median over samples
    files: int

    @property
    def cpu_pct_per_camera(self) -> float:
        """Percent of one core per camera."""
        return 100.0 * self.cpu / self.seconds / self.cameras

    @property
    def cpu_s_per_camera_hour(self) -> float:
        """CPU seconds per camera-hour of recording."""
        return self.cpu / self.cameras * 3600.0 / self.seconds

    @property
    def pss_mb_per_camera(self) -> float:
        """MB of PSS per camera."""
        return self.pss / self.cameras / 1e6


def measure(
    name: str,
    *,
    procs: list[subprocess.Popen[bytes]],
    cameras: int,
    warmup: float,
    seconds: float,
    outdir: Path,
) -> Measure:
    """Let ``procs`` warm up, then measure their CPU and PSS over ``seconds``."""
    pids = [p.pid for p in procs]
    time.sleep(warmup)
    c0 = cpu_seconds(pids)
    t0 = time.monotonic()
    samples: list[int] = []
    while time.monotonic() - t0 < seconds:
        time.sleep(min(2.0, max(0.0, seconds - (time.monotonic() - t0))))
        samples.append(pss_bytes(pids))
    c1 = cpu_seconds(pids)
    elapsed = time.monotonic() - t0
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    files = sum(1 for _ in outdir.rglob("*.mp4"))
    return Measure(name, cameras, elapsed, c1 - c0, statistics.median(samples or [0]), files)


def run_ffmpeg(
    sim: Simulator, codes: list[str], outdir: Path, warmup: float, seconds: float
) -> Measure:
    """One ffmpeg segmenter per camera."""
    procs = []
    for code in codes:
        d = outdir / code
        d.mkdir(parents=True)
        cmd = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
            "-i", sim.url(code), "-c", "copy", "-f", "segment", "-segment_time", "10",
            "-segment_format", "mp4", "-reset_timestamps", "1", str(d / "%05d.mp4"),
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
    return measure(
        "ffmpeg", procs=procs, cameras=len(codes), warmup=warmup, seconds=seconds, outdir=outdir
    )


def run_vigil(
    sim: Simulator,
    codes: list[str],
    *,
    outdir: Path,
    warmup: float,
    seconds: float,
    template: str,
    workers: int,
) -> Measure:
    """The Vigil recorder command on the same cameras."""
    cams = outdir.parent / f"cams-{outdir.name}.json"
    cams.write_text(json.dumps([{"code": c, "url": sim.url(c)} for c in codes]), encoding="utf-8")
    outdir.mkdir(parents=True)
    cmd = template.format(python=sys.executable, volume=outdir, cameras_json=cams, workers=workers)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        shlex.split(cmd), stdin=subprocess.DEVNULL, env=env, cwd=Path(__file__).resolve().parents[1]
    )
    _wait_until_recording(proc)
    return measure(
        "vigil", procs=[proc], cameras=len(codes), warmup=warmup, seconds=seconds, outdir=outdir
    )


def _wait_until_recording(proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Wait until the wrapper has set up its database and replaced itself with the
    recorder (``vigil record``), so that the warm-up and the measured window cover the
    recorder alone, not ``vigil init`` and the inventory import before it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the Vigil recorder exited early (code {proc.returncode})")
        try:
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            argv = []
        if b"vigil_record.py" not in b" ".join(argv):
            return
        time.sleep(0.2)
    raise SystemExit("the Vigil recorder did not start within 180 s")


def fit86(points: dict[int, float]) -> float:
    """Linear extrapolation of a total to 86 cameras from (N -> total) points."""
    ns = sorted(points)
    if len(ns) == 1:
        return points[ns[0]] / ns[0] * 86
    n0, n1 = ns[0], ns[-1]
    slope = (points[n1] - points[n0]) / (n1 - n0)
    return points[n0] + slope * (86 - n0)


def main() -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--vigil-cmd", default=DEFAULT_VIGIL)
    ap.add_argument("--json", metavar="FILE", help="also write raw results here")
    args = ap.parse_args()
    if args.vigil_cmd == "engine":
        args.vigil_cmd = ENGINE_ONLY
    results: list[Measure] = []
    root = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        for n in args.cameras:
            with Simulator.standard(n, sub=False, clock_mount=None) as sim:
                codes = sim.codes
                time.sleep(1.0)
                for r in range(args.repeats):
                    for name in ("ffmpeg", "vigil"):
                        out = root / f"{name}-{n}-{r}"
                        if name == "ffmpeg":
                            m = run_ffmpeg(sim, codes, out, args.warmup, args.seconds)
                        else:
                            m = run_vigil(
                                sim,
                                codes,
                                outdir=out,
                                warmup=args.warmup,
                                seconds=args.seconds,
                                template=args.vigil_cmd,
                                workers=args.workers,
                            )
                        results.append(m)
                        print(
                            f"N={n:3d} repeat {r + 1} {name:6s}: "
                            f"{m.cpu_pct_per_camera:6.3f} % core/camera "
                            f"({m.cpu_s_per_camera_hour:6.1f} CPU s per camera-hour), "
                            f"{m.pss_mb_per_camera:6.2f} MB PSS/camera, {m.files} files",
                            flush=True,
                        )
                        shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("\nmedian over repeats")
    print(f"{'N':>4} {'recorder':8} {'%core/cam':>10} {'CPU s/cam-h':>12} {'MB PSS/cam':>11}")
    med: dict[tuple[str, int], tuple[float, float, float]] = {}
    for n in args.cameras:
        for name in ("ffmpeg", "vigil"):
            ms = [m for m in results if m.name == name and m.cameras == n]
            cpu = statistics.median(m.cpu_pct_per_camera for m in ms)
            cph = statistics.median(m.cpu_s_per_camera_hour for m in ms)
            pss = statistics.median(m.pss_mb_per_camera for m in ms)
            med[(name, n)] = (cpu, cph, pss)
            print(f"{n:4d} {name:8} {cpu:10.3f} {cph:12.1f} {pss:11.2f}")
        f, v = med[("ffmpeg", n)], med[("vigil", n)]
        print(
            f"{n:4d} {'ratio':8} {v[0] / f[0]:10.2f} {'':12} {v[2] / f[2]:11.2f}   (Vigil / ffmpeg)"
        )
    print("\nextrapolated to 86 cameras")
    for name in ("ffmpeg", "vigil"):
        cpu86 = fit86({n: med[(name, n)][0] * n for n in args.cameras})
        mem86 = fit86({n: med[(name, n)][2] * n for n in args.cameras})
        print(f"  {name:8}: {cpu86:6.1f} % of a core, {mem86:7.0f} MB PSS")
    if args.json:
        Path(args.json).write_text(
            json.dumps([m.__dict__ for m in results], indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
