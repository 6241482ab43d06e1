"""A demo school wired to a camera simulator, with recorded footage, for the browser tests
and ``benchmarks/live.py``.

Run inside the data directory's Django (``VIGIL_DATA_DIR`` set)::

    python -m vigil.live.tests.site --port 8600 [--clock CAM-003] [--footage]

It points every demo camera at the simulator on ``--port`` (the demo's own layout,
``/cam/<code>/main|sub``), optionally the clock camera at the simulator's ``/clock``
mount, and with ``--footage`` records footage for a few cameras (see FOOTAGE) into the
demo volumes with catalog rows and a gap, the way the recorder would.
"""

from __future__ import annotations

import argparse
import json
import os
import time

# Cameras with recorded footage: code -> fixture. Spans (seconds after the base time):
# [0, 60) recorded, [60, 90) a gap (camera unreachable), [90, 150) recorded.
FOOTAGE = {
    "CAM-004": "main-h264",
    "CAM-005": "main-h264",
    "CAM-006": "main-h264",
    "CAM-007": "main-h264",
    "CAM-001": "main-h265",
}
SPANS = [(0.0, 60.0), (90.0, 60.0)]


def footage_base(now: float | None = None) -> float:
    """Start of the recorded footage: 20 minutes ago, on a whole minute."""
    t = (now or time.time()) - 20 * 60
    return float(int(t // 60) * 60)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clock", default="")
    parser.add_argument("--footage", action="store_true")
    parser.add_argument("--base", type=float, default=0.0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    import django

    django.setup()
    from vigil.live.tests.footage import seed_catalog
    from vigil.school.models import Camera

    for cam in Camera.objects.all():
        base = f"rtsp://127.0.0.1:{args.port}"
        if cam.code == args.clock:
            cam.main_url = cam.sub_url = f"{base}/clock"
        else:
            cam.main_url = f"{base}/cam/{cam.code}/main"
            cam.sub_url = f"{base}/cam/{cam.code}/sub"
        cam.save(update_fields=["main_url", "sub_url"])
    result: dict[str, object] = {"cameras": Camera.objects.count()}
    if args.footage:
        base_time = args.base or footage_base()
        segments = 0
        for code, fixture in FOOTAGE.items():
            spans = [(base_time + start, seconds) for start, seconds in SPANS]
            segments += seed_catalog(code, fixture, spans, "camera_unreachable")
        result.update(base=base_time, segments=segments)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
