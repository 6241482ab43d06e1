"""The retention sweep on a real, small filesystem filled to capacity with real segment
files: floor and held footage survive, the oldest footage above the floor goes first, a
critical alert is raised and recording pauses when only floor or held footage is left, and
a clock jumping a year ahead purges nothing on its own."""

from __future__ import annotations

import errno
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from vigil.accounts.actor import Actor
from vigil.alerts.models import Alert
from vigil.audit.models import AuditEntry
from vigil.recording.models import Segment
from vigil.recording.storage import ensure_marker
from vigil.retention import services
from vigil.retention.eviction import CLOCK_ALERT, FLOOR_ALERT
from vigil.retention.volumes import fs_info
from vigil.school.models import Camera, StorageVolume

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def setup(demo_site, small_fs, catalog):  # type: ignore[no-untyped-def]
    volume = StorageVolume.objects.select_related("recorder").get(recorder__code="NVR-03")
    lost = Path(small_fs) / "lost+found"
    if lost.exists():
        lost.rmdir()
    volume.path = str(small_fs)
    volume.save()
    ensure_marker(volume)
    cams = list(Camera.objects.filter(code__in=["CAM-069", "CAM-070", "CAM-071"]).order_by("code"))
    now = timezone.now().replace(microsecond=0)
    return {"volume": volume, "cams": cams, "now": now, "catalog": catalog, "fs": Path(small_fs)}


def fill(
    setup,
    *,
    newest_age: timedelta = timedelta(seconds=20),
    every=timedelta(hours=8),
    max_age=60 * DAY,
):  # type: ignore[no-untyped-def]
    """Write segments newest first (three cameras) until the filesystem is full."""
    volume, cams, now, catalog = setup["volume"], setup["cams"], setup["now"], setup["catalog"]
    age = newest_age
    written = 0
    while age <= max_age:
        for cam in cams:
            start = now - age
            try:
                catalog.add(cam, volume, start)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                _drop_partial(volume, cam, start)
                return written
            written += 1
        age += every
    return written


def _drop_partial(volume, cam, start) -> None:  # type: ignore[no-untyped-def]
    folder = Path(volume.path) / cam.code / f"{start:%Y-%m-%d}"
    for p in folder.glob(f"{start:%H%M%S}-*.mp4"):
        if not Segment.objects.filter(volume=volume, path=str(p.relative_to(volume.path))).exists():
            p.unlink()


def fs_free(setup) -> int:  # type: ignore[no-untyped-def]
    info = fs_info(setup["fs"])
    assert info is not None
    return info.free


def test_oldest_above_floor_goes_first_and_floor_and_held_footage_survive(setup, users) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    written = fill(setup)
    assert written > 100
    assert fs_free(setup) < 64 * 1024, "the filesystem should be full"
    floor_cut = now - 20 * DAY
    oldest_start = Segment.objects.filter(volume=volume).order_by("start").first().start
    assert oldest_start < now - 35 * DAY, "footage reaches well beyond the floor"
    # Evidence: the two oldest days of CAM-069 are held.
    cam069 = setup["cams"][0]
    held_range = (oldest_start - timedelta(minutes=1), oldest_start + 2 * DAY)
    hold = services.place_hold(
        Actor.cli(users["totruongbv"]), [cam069], *held_range, "Biên bản sự việc ở hành lang tầng 2"
    )
    held_before = set(
        Segment.objects.filter(
            camera=cam069, start__lt=held_range[1], end__gt=held_range[0]
        ).values_list("pk", flat=True)
    )
    assert held_before
    floor_before = {s.pk: s for s in Segment.objects.filter(volume=volume, end__gt=floor_cut)}
    all_before = {s.pk: s for s in Segment.objects.filter(volume=volume)}

    result = services.sweep(volume, now=now)

    assert result.deleted_segments > 0 and not result.floor_at_risk
    assert result.free_after >= result.target_free
    assert fs_free(setup) >= result.target_free
    remaining = set(Segment.objects.filter(volume=volume).values_list("pk", flat=True))
    deleted = [all_before[pk] for pk in all_before.keys() - remaining]
    assert len(deleted) == result.deleted_segments
    # Nothing under the floor, nothing held.
    assert set(floor_before) <= remaining
    assert held_before <= remaining
    assert all(s.end <= floor_cut for s in deleted)
    # Oldest first: every deleted segment is older than every kept, unheld, above-floor one.
    kept_deletable = [
        all_before[pk]
        for pk in remaining
        if pk not in held_before and all_before[pk].end <= floor_cut
    ]
    assert max(s.start for s in deleted) <= min(s.start for s in kept_deletable)
    # Files follow the catalog.
    root = Path(volume.path)
    assert not any((root / s.path).exists() for s in deleted)
    assert all((root / all_before[pk].path).exists() for pk in remaining)
    entries = AuditEntry.objects.filter(action="footage.delete")
    assert entries.exists() and all(e.detail["reason"] == "retention.space" for e in entries)
    assert services.recording_allowed(volume)
    assert not Alert.objects.filter(cause=FLOOR_ALERT).exists()
    assert hold.is_active


def test_only_floor_and_held_footage_left_raises_the_alert_and_pauses_recording(
    setup, users
) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    admin = Actor.cli(users["admin"])
    fill(setup, max_age=30 * DAY)
    # Everything older than the site's floor is under a hold; the rest is under the floor.
    services.place_hold(
        Actor.cli(users["hieutruong"]), setup["cams"], now - 90 * DAY, now - 19 * DAY, "Điều tra"
    )
    fill(setup, newest_age=timedelta(seconds=5), every=timedelta(minutes=30), max_age=10 * DAY)
    count_before = Segment.objects.filter(volume=volume).count()
    assert fs_free(setup) < 64 * 1024

    result = services.sweep(volume, now=now)

    assert result.deleted_segments == 0 and result.ceiling_segments == 0
    assert Segment.objects.filter(volume=volume).count() == count_before
    assert result.floor_at_risk
    alert = Alert.objects.get(cause=FLOOR_ALERT, recorder=volume.recorder)
    assert alert.severity == "critical" and alert.state == "open"
    assert set(alert.audience.split(",")) == {"security_head", "it_staff", "board", "principal"}
    assert result.recording_paused and not services.recording_allowed(volume)
    assert AuditEntry.objects.filter(action="retention.recording_paused").count() == 1
    # A second sweep changes nothing and does not pile up alerts.
    again = services.sweep(volume, now=now)
    assert again.deleted_segments == 0 and again.recording_paused
    assert Alert.objects.filter(cause=FLOOR_ALERT).count() == 1

    # The board releases the hold: old footage may go again, recording resumes.
    for hold in services.active_holds():
        services.release_hold(Actor.cli(users["phohieutruong"]), hold, "Đã xử lý xong")
    freed = services.sweep(volume, now=now)
    assert freed.deleted_segments > 0 and not freed.floor_at_risk
    assert all(
        s.end > now - 20 * DAY for s in Segment.objects.filter(volume=volume).order_by("start")[:1]
    )
    assert services.recording_allowed(volume)
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert AuditEntry.objects.filter(action="retention.recording_resumed").count() == 1
    del admin


def test_a_camera_floor_above_the_site_floor_keeps_that_camera_longer(setup, users) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    cam069, cam070 = setup["cams"][0], setup["cams"][1]
    services.set_camera_policy(Actor.cli(users["admin"]), cam069, floor_days=45, ceiling_days=None)
    fill(setup)
    young_069 = set(
        Segment.objects.filter(camera=cam069, end__gt=now - 45 * DAY).values_list("pk", flat=True)
    )
    old_070 = set(
        Segment.objects.filter(camera=cam070, end__lte=now - 20 * DAY).values_list("pk", flat=True)
    )
    assert Segment.objects.filter(camera=cam069, end__lte=now - 20 * DAY).exists()
    result = services.sweep(volume, now=now)
    assert result.deleted_segments > 0
    # CAM-070 (site floor, 20 days) lost old footage; CAM-069 kept all it had under 45 days
    # although some of it is older than footage CAM-070 lost.
    lost_070 = old_070 - set(Segment.objects.filter(camera=cam070).values_list("pk", flat=True))
    assert lost_070
    assert young_069 <= set(Segment.objects.filter(camera=cam069).values_list("pk", flat=True))


def test_a_clock_jump_of_a_year_purges_nothing_on_its_own(setup, users, retention_config) -> None:  # type: ignore[no-untyped-def]
    volume, now, catalog = setup["volume"], setup["now"], setup["catalog"]
    services.set_site_policy(Actor.cli(users["admin"]), floor_days=20, ceiling_days=25)
    fill(setup, every=timedelta(hours=12), max_age=30 * DAY)
    first = services.sweep(volume, now=now)
    assert first.ceiling_segments > 0  # footage older than 25 days goes, as the policy says
    kept = set(Segment.objects.filter(volume=volume).values_list("pk", flat=True))
    assert kept and all(s.end > now - 25 * DAY for s in Segment.objects.filter(volume=volume))

    # The system clock jumps a year ahead; nothing was recorded since.
    jumped = now + timedelta(days=365)
    result = services.sweep(volume, now=jumped)
    assert result.ceiling_segments == 0 and result.deleted_segments == 0
    assert set(Segment.objects.filter(volume=volume).values_list("pk", flat=True)) == kept
    assert result.reference is not None and result.reference <= now + timedelta(minutes=1)

    # The recorder then writes an hour of footage stamped with the wrong clock.
    for i in range(12):
        catalog.add(setup["cams"][0], volume, jumped + timedelta(minutes=5 * i), seconds=300)
    later = services.sweep(volume, now=jumped + timedelta(hours=1, minutes=1))
    assert later.clock_suspect
    assert later.reference is not None and later.reference < now + 2 * DAY
    assert later.ceiling_segments == 0 and later.deleted_segments == 0
    assert kept <= set(Segment.objects.filter(volume=volume).values_list("pk", flat=True))
    clock = Alert.objects.get(cause=CLOCK_ALERT)
    assert clock.severity == "warning"


def test_ceiling_deletions_are_capped_per_sweep(setup, users, retention_config) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    retention_config(max_ceiling_deletions_per_sweep=5, batch_segments=2)
    services.set_site_policy(Actor.cli(users["admin"]), floor_days=20, ceiling_days=21)
    fill(setup, every=timedelta(hours=12), max_age=30 * DAY)
    old = Segment.objects.filter(volume=volume, end__lte=now - 21 * DAY).count()
    assert old > 5
    result = services.sweep(volume, now=now)
    assert result.ceiling_segments == 5 and result.capped and result.batches == 3
    assert Segment.objects.filter(volume=volume, end__lte=now - 21 * DAY).count() == old - 5


def test_dry_run_deletes_nothing_but_says_what_would_go(setup) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    fill(setup)
    before = Segment.objects.filter(volume=volume).count()
    files = sum(1 for _ in Path(volume.path).rglob("*.mp4"))
    result = services.sweep(volume, now=now, dry_run=True)
    assert result.deleted_segments > 0 and result.dry_run
    assert Segment.objects.filter(volume=volume).count() == before
    assert sum(1 for _ in Path(volume.path).rglob("*.mp4")) == files
    assert not AuditEntry.objects.filter(action="footage.delete").exists()


def test_a_volume_that_belongs_to_another_installation_is_never_swept(setup) -> None:  # type: ignore[no-untyped-def]
    volume, now = setup["volume"], setup["now"]
    fill(setup)
    marker = Path(volume.path) / ".vigil-volume.json"
    marker.write_text('{"installation": "someone-else", "volume": "x"}')
    result = services.sweep(volume, now=now)
    assert result.skipped and "installation" in result.skipped
    assert not AuditEntry.objects.filter(action="footage.delete").exists()
    os.sync()


def test_an_unmounted_volume_is_not_adopted_nor_swept(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A disk that failed to mount leaves an empty mount point: the catalog still lists its
    footage, so the sweep must not write a marker there and delete the rows."""
    volume, now = setup["volume"], setup["now"]
    fill(setup)
    rows = Segment.objects.filter(volume=volume).count()
    empty = tmp_path / "mountpoint"
    empty.mkdir()
    volume.path = str(empty)
    volume.save()
    result = services.sweep(volume, now=now)
    assert "no Vigil volume marker" in result.skipped
    assert not (empty / ".vigil-volume.json").exists()
    volume.path = str(tmp_path / "absent")
    volume.save()
    assert services.sweep(volume, now=now).skipped == "not mounted on this machine"
    assert Segment.objects.filter(volume=volume).count() == rows
    assert not AuditEntry.objects.filter(action="footage.delete").exists()


def test_after_a_recorder_outage_the_reference_catches_up_without_purging(setup) -> None:  # type: ignore[no-untyped-def]
    """Three days without footage, then recording resumes: the reference is held back at
    first (no ceiling deletions, no clock alarm for a mere outage), then catches up."""
    volume, now, catalog = setup["volume"], setup["now"], setup["catalog"]
    cam = setup["cams"][0]
    fill(setup, every=timedelta(hours=12), max_age=10 * DAY)
    first = services.sweep(volume, now=now)
    assert not first.clock_suspect
    resumed = now + 3 * DAY
    for i in range(6):  # half an hour of footage after the outage
        catalog.add(cam, volume, resumed + timedelta(minutes=5 * i), seconds=300)
    back = services.sweep(volume, now=resumed + timedelta(minutes=31))
    assert back.clock_suspect and back.reference is not None
    assert back.reference < resumed  # held back...
    assert back.reference >= now + timedelta(hours=12)  # ...but advancing 24x the footage
    assert not Alert.objects.filter(cause=CLOCK_ALERT).exists()
    # Three more hours of recording: the reference has caught up.
    for i in range(36):
        catalog.add(cam, volume, resumed + timedelta(minutes=30 + 5 * i), seconds=300)
    later = services.sweep(volume, now=resumed + timedelta(hours=3, minutes=31))
    assert not later.clock_suspect
    assert later.reference == resumed + timedelta(hours=3, minutes=30)
