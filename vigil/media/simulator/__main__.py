"""``python -m vigil.media.simulator --cameras N``: run simulated cameras until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from vigil.media.simulator import Simulator


def main(argv: list[str] | None = None) -> int:
    """Run the simulator in the foreground and print the camera URLs."""
    parser = argparse.ArgumentParser(prog="python -m vigil.media.simulator")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--h265", type=int, default=0, help="cameras sending H.265 main")
    parser.add_argument("--audio", type=int, default=0, help="cameras with AAC audio")
    parser.add_argument("--no-sub", action="store_true", help="main streams only")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    sim = Simulator.standard(
        args.cameras,
        sub=not args.no_sub,
        h265=args.h265,
        audio=args.audio,
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
    )
    sim.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for m in sim.mounts:
        print(f"{m.code:8} {m.stream:5} {m.fixture.codec} {sim.url(m.code, m.stream)}")
    print(f"clock          {sim.clock_url}")
    sys.stdout.flush()
    try:
        while not stop.wait(1.0):
            if not sim.running:
                print("simulator exited", file=sys.stderr)
                return 1
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
