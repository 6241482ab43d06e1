"""What the analyser stores and what the desk sees: motion events, tamper alerts,
quality days, settings; permission decisions and their audit entries."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.alerts import snapshots
from vigil.alerts.models import Alert
from vigil.analytics import services, timeline
from vigil.analytics.models import MotionEvent, QualityDay
from vigil.audit.models import AuditEntry
from vigil.authz.services import AccessDenied
from vigil.school.models import Camera
from vigil.vision import motion as vmotion
from vigil.vision.quality import CameraSpec, assess_quality
from vigil.vision.tamper import TamperAlert

pytestmark = pytest.mark.django_db


def _event(start: float, end: float, seq: int = 1) -> vmotion.MotionEvent:
    return vmotion.MotionEvent(
        seq=seq,
        start=start,
        end=end,
        peak_ts=(start + end) / 2,
        peak_score=0.04,
        zones=("door",),
        box=(0.1, 0.2, 0.4, 0.9),
        motion_frames=12,
        thumbnail=b"\xff\xd8thumb\xff\xd9",
    )


def _store_event(camera: Camera, minutes_ago: float, seconds: float = 8.0) -> MotionEvent:
    t = (timezone.now() - timedelta(minutes=minutes_ago)).timestamp()
    ev = _event(t, t + seconds)
    pk = services.motion_started(camera, ev)
    services.motion_ended(camera, pk, ev)
    return MotionEvent.objects.get(pk=pk)


def test_motion_event_stored_with_thumbnail_and_marks(demo_site) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    row = _store_event(cam, 10)
    assert row.end is not None and abs(row.duration - 8.0) < 0.01
    assert row.zone_list == ["door"] and row.has_thumbnail
    assert services.thumb_path(row).read_bytes() == b"\xff\xd8thumb\xff\xd9"
    marks = timeline.marks(cam, row.start - timedelta(minutes=1), row.end + timedelta(minutes=1))
    assert [(m["kind"], m["start"], m["end"]) for m in marks] == [("motion", row.start, row.end)]
    assert "door" in marks[0]["label"]
    assert timeline.marks(cam, row.end + timedelta(minutes=1), row.end + timedelta(minutes=2)) == []
    # the playback timeline collects them through the live app's hook
    from vigil.live.marks import collect_marks

    collected = collect_marks(cam, row.start - timedelta(minutes=1), row.end + timedelta(minutes=1))
    assert [(m["kind"], m["source"]) for m in collected] == [("motion", "analytics")]


def test_search_is_one_audit_entry_listing_cameras_and_range(
    demo_site, users, login, client
) -> None:  # type: ignore[no-untyped-def]
    cams = list(Camera.objects.filter(area__code="CONG-CHINH").order_by("code"))
    for i, cam in enumerate(cams):
        _store_event(cam, 20 + i)
    guard = Actor(users["baove"])
    start, end = timezone.now() - timedelta(hours=1), timezone.now()
    before = AuditEntry.objects.count()
    found = services.search_motion(guard, start=start, end=end, area_code="CONG-CHINH")
    assert len(found.events) == len(cams) and not found.refused
    entries = list(AuditEntry.objects.order_by("seq")[before:])
    assert len(entries) == 1 and entries[0].action == "footage.playback"
    detail = json.loads(entries[0].detail_json)
    assert detail["cameras"] == [c.code for c in cams] and detail["purpose"] == "motion events"
    # the page: thumbnails by token, no further audit entry per picture
    login("baove")
    page = client.get(
        reverse("analytics:motion"),
        {"area": "CONG-CHINH", "from_day": timezone.localtime(start).strftime("%Y-%m-%d"),
         "from_time": timezone.localtime(start).strftime("%H:%M")},
    ).content.decode()  # fmt: skip
    urls = [
        page[i : page.index('"', i)]
        for i in range(len(page))
        if page.startswith("/analytics/thumb/", i)
    ]
    assert len(urls) == len(cams)
    n = AuditEntry.objects.count()
    assert client.get(urls[0]).content == b"\xff\xd8thumb\xff\xd9"
    assert AuditEntry.objects.count() == n
    from django.test import Client

    other = login("totruongbv", Client())
    assert other.get(urls[0]).status_code == 404  # issued to the guard, not to this user


def test_guard_cannot_search_old_footage_and_head_cannot_search(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    _store_event(cam, 60 * 30)  # 30 hours ago
    guard = Actor(users["baove"])
    old = services.search_motion(
        guard,
        start=timezone.now() - timedelta(hours=31),
        end=timezone.now() - timedelta(hours=29),
        cameras=[cam],
    )
    assert old.events == [] and old.refused == [cam] and "24" in old.reason
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry.outcome == "denied" and json.loads(entry.detail_json)["refused"] == ["CAM-001"]
    with pytest.raises(AccessDenied):
        services.search_motion(
            Actor(users["totruongmg"]),
            start=timezone.now() - timedelta(hours=1),
            end=timezone.now(),
        )
    with pytest.raises(ValueError):
        services.search_motion(guard, start=timezone.now(), end=timezone.now() - timedelta(hours=1))


def test_api_search(demo_site, login, client) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    row = _store_event(cam, 5)
    login("totruongbv")
    r = client.get(
        "/api/analytics/motion",
        {"start": (timezone.now() - timedelta(hours=1)).isoformat(), "end": timezone.now().isoformat(), "camera": "CAM-001"},
    )  # fmt: skip
    assert r.status_code == 200
    data = r.json()
    assert [e["id"] for e in data["events"]] == [row.pk] and data["events"][0]["zones"] == ["door"]
    assert client.get(data["events"][0]["thumbnail"]).status_code == 200


def test_tamper_raised_routes_an_alert_with_snapshots(demo_site) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.filter(area__department__code="MG").order_by("code").first()
    now = timezone.now().timestamp()
    ta = TamperAlert(
        cause="covered",
        severity="critical",
        started_at=now - 4,
        raised_at=now,
        snapshot_before=b"\xff\xd8before\xff\xd9",
        snapshot_after=b"\xff\xd8after\xff\xd9",
        details={"coarse_match": 0.1},
    )
    pk, created = services.tamper_raised(cam, ta)
    alert = Alert.objects.get(pk=pk)
    assert created and alert.cause == "tamper_covered" and alert.severity == "critical"
    assert alert.department.code == "MG" and alert.audience_roles == [
        "security_guard",
        "department_head",
    ]
    assert snapshots.read(alert.snapshot_before) == b"\xff\xd8before\xff\xd9"
    assert snapshots.read(alert.snapshot_after) == b"\xff\xd8after\xff\xd9"
    assert services.tamper_raised(cam, ta) == (pk, False)  # de-duplicated
    services.tamper_cleared(cam, ta)
    alert.refresh_from_db()
    assert alert.state == "open" and alert.condition_ended_at is not None
    lost = TamperAlert("video_lost", "critical", now, now + 10)
    pk2, _ = services.tamper_raised(cam, lost)
    assert Alert.objects.get(pk=pk2).cause == "tamper_video_lost"
    assert "it_staff" in Alert.objects.get(pk=pk2).audience_roles


def test_quality_days_and_maintenance_list(demo_site, users, login, client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.VIGIL = settings.VIGIL.model_copy(
        update={"analytics": settings.VIGIL.analytics.model_copy(update={"quality_min_samples": 3})}
    )
    import cv2

    rng = np.random.default_rng(1)
    sharp = np.full((360, 640), 110, np.uint8)
    for _ in range(300):  # a scene of many sharp-edged objects
        x, y = int(rng.integers(0, 620)), int(rng.integers(0, 340))
        w, h = int(rng.integers(4, 60)), int(rng.integers(4, 60))
        sharp[y : y + h, x : x + w] = int(rng.integers(20, 235))
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    good, bad = Camera.objects.get(code="CAM-001"), Camera.objects.get(code="CAM-002")
    t = timezone.now().timestamp()
    for i in range(4):
        services.quality_sampled(good, assess_quality(sharp, spec=CameraSpec(640, 360)), t - 60 * i)
        services.quality_sampled(
            bad, assess_quality(blurred, spec=CameraSpec(640, 360)), t - 60 * i
        )
    today = timezone.localdate()
    g, b = services.summarize_day(good, today), services.summarize_day(bad, today)
    assert g.passed and not b.passed and b.samples == 4
    assert any(i["code"] == "blurry" for i in b.issues)
    items = services.maintenance_list(users["totruongbv"])
    assert [i.camera.code for i in items] == ["CAM-002"]
    login("totruongbv")
    page = client.get(reverse("analytics:quality")).content.decode()
    assert 'data-camera="CAM-002"' in page and 'data-camera="CAM-001"' not in page
    cam_page = client.get(reverse("school:camera_detail", args=["CAM-002"])).content.decode()
    assert 'data-testid="quality-days"' in cam_page
    assert QualityDay.objects.filter(camera=bad, day=today, passed=False).exists()


def test_main_stream_spec_counts_in_the_sample(demo_site) -> None:  # type: ignore[no-untyped-def]
    from vigil.recording.models import CameraHealth

    cam = Camera.objects.get(code="CAM-001")
    health = CameraHealth(camera=cam, online=True, width=1280, height=720, bitrate_bps=300_000)
    rng = np.random.default_rng(2)
    frame = np.clip(rng.normal(120, 50, (360, 640)), 0, 255).astype(np.uint8)
    sample = assess_quality(frame, spec=CameraSpec(640, 360))
    combined, main = services.with_main_stream(sample, cam, health)
    codes = {i.code for i in combined.issues}
    assert main == (1280, 720, 300.0)
    assert {"low_resolution", "low_bitrate"} <= codes and not combined.passed


def test_settings_are_validated_audited_and_need_site_manage(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    admin = Actor(users["admin"])
    row = services.update_settings(
        admin,
        cam,
        motion_enabled=True,
        tamper_enabled=True,
        threshold=25,
        masks=[[[0, 0], [0.3, 0], [0.3, 0.2]]],
        zones={"door": [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1]]},
    )
    assert row.masks == [[[0.0, 0.0], [0.3, 0.0], [0.3, 0.2]]] and list(row.zones) == ["door"]
    cfg = services.analyser_config(cam, row)
    assert cfg.motion.threshold == 25 and "door" in cfg.motion.zones and len(cfg.motion.masks) == 1
    assert AuditEntry.objects.filter(action="analytics.settings").count() == 1
    with pytest.raises(ValueError):
        services.update_settings(admin, cam, motion_enabled=True, tamper_enabled=True,
                                 threshold=25, masks=[[[0, 0], [2, 0], [0, 1]]], zones={})  # fmt: skip
    with pytest.raises(AccessDenied):
        services.update_settings(Actor(users["baove"]), cam, motion_enabled=False,
                                 tamper_enabled=False, threshold=30, masks=[], zones={})  # fmt: skip
    services.accept_view(Actor(users["totruongbv"]), cam, "re-aimed at the new gate")
    row.refresh_from_db()
    assert row.view_accepted_at is not None


def test_purge_forgets_old_motion_and_thumbnails(demo_site) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    old = _store_event(cam, 60 * 24 * 25)
    new = _store_event(cam, 5)
    out = services.purge()
    assert out["motion_events"] == 1 and out["thumbnail_days"] >= 1
    assert not MotionEvent.objects.filter(pk=old.pk).exists()
    assert not services.thumb_path(old).exists() and services.thumb_path(new).exists()


def test_the_latest_view_is_a_live_view_for_those_who_manage_the_camera(demo_site, users) -> None:  # type: ignore[no-untyped-def]
    from vigil.authz.rules import Action
    from vigil.authz.services import can

    cam = Camera.objects.get(code="CAM-001")
    path = services.view_path(cam.code)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8view\xff\xd9")
    manager = next(
        u
        for u in users.values()
        if can(u, Action.SITE_MANAGE, cam) and can(u, Action.LIVE_VIEW, cam)
    )
    seq = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    try:
        assert services.latest_view(Actor(manager), cam) == b"\xff\xd8view\xff\xd9"
        live = AuditEntry.objects.filter(seq__gt=seq, action=Action.LIVE_VIEW.value)
        assert live.filter(outcome="success").count() == 1
        with pytest.raises(AccessDenied):
            services.latest_view(Actor(users["giaovien"]), cam)
        path.unlink()
        assert services.latest_view(Actor(manager), cam) is None
    finally:
        path.unlink(missing_ok=True)
