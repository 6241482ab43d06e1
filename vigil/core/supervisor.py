"""Runs Vigil's long-running processes together (for ``vigil demo``), restarting any that
exits unexpectedly (self-recovery after faults: QCVN 135:2024/BTTTT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    next_start: float = 0.0


class Supervisor:
    def __init__(self, children: list[Child], log: Callable[[str], object] = print) -> None:
        self.children = children
        self.log = log
        self.stopping = False

    def _start(self, child: Child) -> None:
        cmd = [sys.executable, "-m", "vigil.cli", *child.args]
        child.proc = subprocess.Popen(cmd, env=os.environ.copy())
        self.log(f"[demo] started {child.name} (pid {child.proc.pid})")

    def _stop_all(self, *_args: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._stop_all)
        signal.signal(signal.SIGTERM, self._stop_all)
        for child in self.children:
            self._start(child)
        try:
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    if child.proc is not None and child.proc.poll() is not None:
                        code = child.proc.returncode
                        child.proc = None
                        child.restarts = [t for t in child.restarts if now - t < 300] + [now]
                        delay = min(30.0, 2.0 ** min(len(child.restarts), 5))
                        child.next_start = now + delay
                        self.log(
                            f"[demo] {child.name} exited with {code}; restarting in {delay:.0f} s"
                        )
                    elif child.proc is None and now >= child.next_start:
                        self._start(child)
                time.sleep(0.5)
        finally:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in self.children:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
            self.log("[demo] stopped")
        return 0
