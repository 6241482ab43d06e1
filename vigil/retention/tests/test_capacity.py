"""The capacity model on the demo school: measured bitrates (with their fallbacks), real
volume sizes against declared ones, what-if cameras and the `vigil storage plan` command."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import run_vigil
from vigil.recording.models import CameraHealth
from vigil.retention import capacity
from vigil.retention.volumes import capacities, fs_info, used_bytes
from vigil.school.models import Camera, StorageVolume

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

TB = 10**12


@pytest.fixture
def declared_volumes(demo_site, tmp_path):  # type: ignore[no-untyped-def]
    """Volumes whose paths do not exist here: the plan uses the declared sizes."""
    for v in StorageVolume.objects.all():
        v.path = str(tmp_path / "elsewhere" / v.recorder.code)
        v.save()


def test_bitrate_is_measured_from_segments_then_health_then_spec(
    demo_site, catalog, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    volume = StorageVolume.objects.get(recorder__code="NVR-01")
    volume.path = str(tmp_path / "v1")
    volume.save()
    measured, live, spec = Camera.objects.filter(
        code__in=["CAM-001", "CAM-002", "CAM-003"]
    ).order_by("code")
    now = timezone.now()
    for i in range(120):  # 20 minutes of 10-second segments of 25,000 bytes: 20 kbit/s
        catalog.add(measured, volume, now - timedelta(seconds=10 * (i + 1)), data=b"x" * 25_000)
    CameraHealth.objects.create(camera=live, bitrate_bps=3_000_000, online=True)
    rates = capacity.camera_rates([measured, live, spec], now)
    assert rates[measured.pk].source == "measured"
    assert rates[measured.pk].kbps == pytest.approx(20.0)
    assert (rates[live.pk].source, rates[live.pk].kbps) == ("health", pytest.approx(3000))
    assert (rates[spec.pk].source, rates[spec.pk].kbps) == ("spec", pytest.approx(1536))
    # Less than ten minutes of footage is not a measurement.
    few = capacity.camera_rates([measured], now + timedelta(hours=24) - timedelta(minutes=5))
    assert few[measured.pk].source == "spec"


def test_plan_with_declared_sizes_projects_days_for_12_12_6_tb(declared_volumes) -> None:  # type: ignore[no-untyped-def]
    plan = capacity.build_plan()
    days = {r.code: r.projected_days for r in plan.recorders}
    assert days["NVR-01"] == pytest.approx(20.56, abs=0.01)
    assert days["NVR-02"] == pytest.approx(22.98, abs=0.01)
    assert days["NVR-03"] == pytest.approx(21.70, abs=0.01)
    assert plan.holds_floor
    assert {c.rate_source for c in plan.cameras} == {"spec"}
    assert plan.proposed_minimum_days == pytest.approx(plan.upper_bound_days, rel=1e-3)


def test_an_extra_1080p_camera_on_the_6tb_recorder_is_flagged_with_a_breach_date(
    declared_volumes,
) -> None:  # type: ignore[no-untyped-def]
    plan = capacity.build_plan(capacity.WhatIf.parse(["NVR-03:4096"]))
    nvr3 = next(r for r in plan.recorders if r.code == "NVR-03")
    assert not nvr3.holds_floor and nvr3.projected_days < 20
    assert nvr3.breach_date is not None
    # Empty volumes fill at today's rates: the floor breaks after the projected days.
    assert (nvr3.breach_date - plan.generated_at).total_seconds() / 86400 == pytest.approx(
        nvr3.projected_days, rel=0.01
    )
    extra = next(c for c in plan.cameras if c.what_if)
    assert extra.proposed_recorder != "NVR-03"
    assert plan.proposal_holds_floor
    assert any("NVR-03" in n for n in plan.notes)


def test_what_if_input_is_checked(declared_volumes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="RECORDER:KBPS"):
        capacity.WhatIf.parse(["NVR-03"])
    with pytest.raises(ValueError, match="no recorder"):
        capacity.build_plan(capacity.WhatIf.parse(["NVR-09:1000"]))
    with pytest.raises(ValueError, match="no camera"):
        capacity.build_plan(capacity.WhatIf.parse([], ["CAM-999"]))


def test_a_real_filesystem_smaller_than_declared_is_used_and_said(demo_site, small_fs) -> None:  # type: ignore[no-untyped-def]
    volume = StorageVolume.objects.get(recorder__code="NVR-03")
    volume.path = str(small_fs)
    volume.save()
    info = fs_info(small_fs)
    assert info is not None
    cap = capacities([volume])[volume.pk]
    assert cap.effective == info.total < volume.capacity_bytes
    assert "smaller than declared" in cap.note
    plan = capacity.build_plan()
    nvr3 = next(r for r in plan.recorders if r.code == "NVR-03")
    assert nvr3.limited_by_fs and nvr3.effective_bytes == info.total
    assert nvr3.projected_days < 0.01 and not nvr3.holds_floor
    assert nvr3.projected_days_declared == pytest.approx(21.70, abs=0.01)
    assert any("NVR-03:disk1: real filesystem smaller than declared" in n for n in plan.notes)


def test_volumes_sharing_a_filesystem_share_it(demo_site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    vols = list(StorageVolume.objects.order_by("recorder__code"))
    for v in vols:
        (tmp_path / v.recorder.code).mkdir()
        v.path = str(tmp_path / v.recorder.code)
        v.save()
    info = fs_info(tmp_path)
    assert info is not None
    if info.total > 5 * TB:
        pytest.skip("this disk is larger than the demo's declared volumes")
    caps = capacities(vols)
    total = sum(c.effective for c in caps.values())
    assert total <= info.total
    assert caps[vols[0].pk].effective == pytest.approx(2 * caps[vols[2].pk].effective, rel=1e-6)
    assert all(c.shared_with for c in caps.values())


def test_used_bytes_are_counted_incrementally(demo_site, catalog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    volume = StorageVolume.objects.get(recorder__code="NVR-02")
    volume.path = str(tmp_path / "v2")
    volume.save()
    cam = Camera.objects.get(code="CAM-040")
    now = timezone.now()
    catalog.add(cam, volume, now - timedelta(minutes=5), data=b"a" * 1000)
    assert used_bytes(volume) == 1000
    catalog.add(cam, volume, now - timedelta(minutes=4), data=b"b" * 500)
    assert used_bytes(volume) == 1500  # only the new row was read


def test_storage_plan_command_prints_table_and_json(demo_data_dir) -> None:  # type: ignore[no-untyped-def]
    table = run_vigil(["storage", "plan", "--declared"], demo_data_dir, check=True)
    for code in ("NVR-01", "NVR-02", "NVR-03"):
        assert code in table.stdout
    assert "20.6" in table.stdout and "Proposed assignment" in table.stdout
    what_if = run_vigil(
        ["storage", "plan", "--declared", "--add-camera", "NVR-03:4096", "--format", "json"],
        demo_data_dir,
    )
    assert what_if.returncode == 1  # the configuration cannot hold the floor
    data = json.loads(what_if.stdout)
    nvr3 = next(r for r in data["recorders"] if r["code"] == "NVR-03")
    assert nvr3["holds_floor"] is False and nvr3["breach_date"]
    assert data["proposal_holds_floor"] is True
    assert data["moves"] == [{"camera": "+1", "from": "NVR-03", "to": "NVR-02"}]
    bad = run_vigil(["storage", "plan", "--add-camera", "NVR-03"], demo_data_dir)
    assert bad.returncode != 0 and "RECORDER:KBPS" in bad.stderr
