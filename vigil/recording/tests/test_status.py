from datetime import timedelta

import pytest
from django.utils import timezone

from vigil.media.ingest import Gap as EngineGap
from vigil.media.ingest import GapCause
from vigil.recording.catalog import GapTracker, camera_timeline
from vigil.recording.health import statuses
from vigil.recording.models import CameraHealth, Gap, RecorderNode, Segment
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(demo_site):  # type: ignore[no-untyped-def]
    now = timezone.now()
    cam = Camera.objects.get(code="CAM-001")
    vol = cam.recorder.volumes.first()
    RecorderNode.objects.create(
        recorder=cam.recorder, hostname="h", pid=1, started_at=now, heartbeat_at=now
    )
    CameraHealth.objects.create(
        camera=cam, online=True, fps=15, bitrate_bps=1.5e6, last_frame_at=now
    )
    start = now - timedelta(minutes=2)
    for i in range(6):
        Segment.objects.create(
            camera=cam,
            volume=vol,
            path=f"CAM-001/x/{i}.mp4",
            start=start + timedelta(seconds=10 * i),
            end=start + timedelta(seconds=10 * (i + 1)),
            duration=10,
            size_bytes=1000,
            sha256="0" * 64,
            codec="h264",
        )
    return cam


def test_statuses_report_recorded_and_unrecorded_cameras(recorded) -> None:  # type: ignore[no-untyped-def]
    rows = {r.code: r for r in statuses(Camera.objects.all())}
    assert rows["CAM-001"].state == "online"
    assert (
        rows["CAM-001"].recorded_today_s == pytest.approx(60)
        or rows["CAM-001"].recorded_today_s < 60
    )
    assert rows["CAM-035"].state == "not_recorded"


def test_status_page_and_api_follow_permissions(recorded, login) -> None:  # type: ignore[no-untyped-def]
    guard = login("baove")
    page = guard.get("/recording/status/").content.decode()
    assert 'data-camera="CAM-001"' in page
    assert guard.get("/api/health/").json()[0]["camera"] == "CAM-001"
    head = login("totruongmg")  # department head: own department's cameras only
    codes = {r["camera"] for r in head.get("/api/health/").json()}
    assert codes and all(Camera.objects.get(code=c).area.department.code == "MG" for c in codes)
    assert login("giaovien").get("/recording/status/").status_code == 403


def test_gap_tracker_upserts_open_then_closed(recorded) -> None:  # type: ignore[no-untyped-def]
    tracker = GapTracker.for_camera(recorded)
    t0 = timezone.now().timestamp()
    gap = EngineGap("CAM-001", t0, GapCause.CAMERA_UNREACHABLE, "refused")
    tracker.apply(gap)
    assert Gap.objects.get(camera=recorded).end is None
    gap.end_utc = t0 + 7
    tracker.apply(gap)
    row = Gap.objects.get(camera=recorded)
    assert (row.end - row.start).total_seconds() == pytest.approx(7)
    assert row.cause == Gap.Cause.CAMERA_UNREACHABLE


def test_timeline_merges_touching_segments(recorded) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    found = camera_timeline(recorded.pk, now - timedelta(hours=1), now)
    spans = found.spans(tolerance=0.5)
    assert len(spans) == 1
    assert spans[0][1] - spans[0][0] == pytest.approx(60)
    assert found.gaps == []
