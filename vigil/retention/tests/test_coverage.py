"""Coverage records from the catalog and the audit log, and signed daily reports: stored
unaltered, exported (JSON, CSV, PDF) and verified — including after tampering."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import run_vigil
from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry, AuditHead
from vigil.recording import catalog
from vigil.recording.models import Gap, Segment
from vigil.recording.storage import delete_segments, ensure_marker
from vigil.retention import coverage, reports
from vigil.retention.models import CoverageDay, CoverageReport, EarlyDeletion
from vigil.school.models import Camera, StorageVolume

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(demo_site, tmp_path, catalog):  # type: ignore[no-untyped-def]
    volume = StorageVolume.objects.get(recorder__code="NVR-01")
    volume.path = str(tmp_path / "nvr-01")
    volume.save()
    ensure_marker(volume)
    day = coverage.local_day(timezone.now()) - timedelta(days=2)
    ds, de = coverage.day_bounds(day)
    # The cameras joined Vigil a month ago.
    Camera.objects.update(created_at=timezone.now() - timedelta(days=30))
    return {"volume": volume, "day": day, "ds": ds, "de": de, "catalog": catalog}


def test_day_bounds_are_local_days(site) -> None:  # type: ignore[no-untyped-def]
    ds, de = site["ds"], site["de"]
    assert (de - ds) == timedelta(days=1)
    assert ds.astimezone(coverage.site_tz()).hour == 0
    assert ds.utcoffset() == timedelta(0) and ds.hour == 17  # Asia/Ho_Chi_Minh is UTC+7


def test_recorded_seconds_gaps_and_boundaries(site) -> None:  # type: ignore[no-untyped-def]
    volume, ds, de, add = site["volume"], site["ds"], site["de"], site["catalog"].add
    cam = Camera.objects.get(code="CAM-001")
    # A segment straddling midnight at the start (6 of its 10 s inside), an hour of
    # 10-second segments, a segment straddling the end (4 s inside).
    add(cam, volume, ds - timedelta(seconds=4))
    for i in range(360):
        add(cam, volume, ds + timedelta(hours=8, seconds=10 * i), write=False)
    add(cam, volume, de - timedelta(seconds=4))
    Gap.objects.create(
        camera=cam,
        start=ds + timedelta(hours=2),
        end=ds + timedelta(hours=3),
        cause="camera_unreachable",
    )
    Gap.objects.create(camera=cam, start=de - timedelta(hours=1), end=None, cause="stream_stalled")
    Gap.objects.create(
        camera=cam,
        start=ds - timedelta(days=2),
        end=ds - timedelta(days=1),
        cause="recorder_stopped",
    )
    rows = {r.camera.code: r for r in coverage.compute_day(site["day"])}
    row = rows["CAM-001"]
    assert row.recorded_seconds == pytest.approx(3600 + 6 + 4)
    assert row.segments == 361  # segments starting inside the day
    assert row.gap_causes == {"camera_unreachable": 3600.0, "stream_stalled": 3600.0}
    assert row.expected_seconds == 86400
    assert row.unexplained_seconds == pytest.approx(86400 - 3610 - 7200)
    assert row.oldest_footage == ds - timedelta(seconds=4)
    assert row.floor_met and row.floor_days == 20
    assert rows["CAM-002"].recorded_seconds == 0 and rows["CAM-002"].oldest_footage is None
    assert len(rows) == 86


def test_timeline_of_a_camera_between_two_instants(site) -> None:  # type: ignore[no-untyped-def]
    volume, ds, add = site["volume"], site["ds"], site["catalog"].add
    cam = Camera.objects.get(code="CAM-003")
    for i in range(30):
        add(cam, volume, ds + timedelta(seconds=10 * i), write=False)
    Gap.objects.create(
        camera=cam, start=ds + timedelta(seconds=300), end=None, cause="camera_unreachable"
    )
    t = catalog.camera_timeline(cam.pk, ds + timedelta(seconds=95), ds + timedelta(seconds=400))
    assert t.segments[0][0] == pytest.approx((ds + timedelta(seconds=90)).timestamp(), abs=1e-3)
    assert len(t.segments) == 21  # the one straddling the start, and 20 inside
    assert t.segments[-1][1] == pytest.approx((ds + timedelta(seconds=300)).timestamp(), abs=1e-3)
    assert t.recorded_seconds == pytest.approx(210, abs=1e-2)
    assert t.spans() == [(pytest.approx(t.segments[0][0]), pytest.approx(t.segments[-1][1]))]
    assert t.gaps == [(ds + timedelta(seconds=300), None, "camera_unreachable")]


def test_a_deletion_of_footage_younger_than_the_floor_breaks_the_floor_from_that_day(site) -> None:  # type: ignore[no-untyped-def]
    volume, ds, add = site["volume"], site["ds"], site["catalog"].add
    cam = Camera.objects.get(code="CAM-004")
    segs = [add(cam, volume, ds + timedelta(hours=10, seconds=10 * i)) for i in range(6)]
    before = coverage.compute_day(site["day"])
    assert all(r.floor_met for r in before)
    # Someone deletes footage that is two days old (not by the retention sweep).
    delete_segments(segs[:3], reason="manual", actor=Actor.cli())
    assert coverage.update_ledger() == 1
    early = EarlyDeletion.objects.get()
    assert (early.camera_id, early.reason, early.floor_days) == (cam.pk, "manual", 20)
    today = coverage.local_day(timezone.now())
    rows = {r.camera.code: r for r in coverage.compute_day(today)}
    assert not rows["CAM-004"].floor_met and rows["CAM-004"].early_deletions == 1
    assert rows["CAM-005"].floor_met
    # The day of the footage, recomputed: the state at its end was intact.
    again = {r.camera.code: r for r in coverage.compute_day(site["day"])}
    assert again["CAM-004"].floor_met
    # What was recorded stays recorded; what is available dropped.
    assert again["CAM-004"].recorded_seconds == pytest.approx(60)
    assert again["CAM-004"].available_seconds == pytest.approx(30)


def test_retention_deletions_past_the_floor_do_not_break_it(site) -> None:  # type: ignore[no-untyped-def]
    volume, add = site["volume"], site["catalog"].add
    cam = Camera.objects.get(code="CAM-006")
    old = [add(cam, volume, timezone.now() - timedelta(days=25, seconds=10 * i)) for i in range(3)]
    delete_segments(old, reason="retention.space", actor=Actor.system("retention"))
    assert coverage.update_ledger() == 0
    today = coverage.local_day(timezone.now())
    assert all(r.floor_met for r in coverage.compute_day(today))


@pytest.fixture
def signed(site):  # type: ignore[no-untyped-def]
    volume, ds, add = site["volume"], site["ds"], site["catalog"].add
    for code in ("CAM-001", "CAM-002"):
        cam = Camera.objects.get(code=code)
        for i in range(60):
            add(cam, volume, ds + timedelta(hours=9, seconds=10 * i), write=False)
    Gap.objects.create(
        camera=Camera.objects.get(code="CAM-002"),
        start=ds + timedelta(hours=12),
        end=ds + timedelta(hours=13),
        cause="camera_unreachable",
    )
    head_before = AuditHead.objects.get(pk=1)
    report = reports.sign_day(site["day"], actor=Actor.system("retention"))
    return {"report": report, "head": (head_before.last_seq, head_before.last_hash), **site}


def test_a_signed_report_is_stored_with_the_audit_head_and_verifies(signed) -> None:  # type: ignore[no-untyped-def]
    report: CoverageReport = signed["report"]
    payload = json.loads(report.payload)
    assert payload["day"] == signed["day"].isoformat()
    assert len(payload["cameras"]) == 86
    assert payload["audit_head"] == {"seq": signed["head"][0], "hash": signed["head"][1]}
    cam2 = next(r for r in payload["cameras"] if r["camera"] == "CAM-002")
    assert cam2["recorded_seconds"] == 600 and cam2["gaps"] == {"camera_unreachable": 3600.0}
    entry = AuditEntry.objects.filter(action="retention.report.sign").get()
    assert entry.detail["digest"] == report.digest and entry.seq == signed["head"][0] + 1
    result = reports.verify_stored(report)
    assert result.ok, result.to_dict()
    # Signing again returns the stored report unchanged.
    assert reports.sign_day(signed["day"], actor=Actor.cli()).digest == report.digest


def test_a_tampered_stored_report_fails(signed) -> None:  # type: ignore[no-untyped-def]
    report: CoverageReport = signed["report"]
    CoverageReport.objects.filter(pk=report.pk).update(
        payload=report.payload.replace('"floor_met":true', '"floor_met":false', 1)
    )
    bad = reports.verify_stored(CoverageReport.objects.get(pk=report.pk))
    assert not bad.ok
    assert {c.name for c in bad.checks if not c.ok} >= {"digest", "signature"}
    # Re-signing with another key does not help: it is not the site's key.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = Ed25519PrivateKey.generate()
    forged = CoverageReport.objects.get(pk=report.pk)
    forged.digest = coverage.digest_of(forged.payload)
    forged.signature = base64.b64encode(other.sign(forged.payload.encode())).decode()
    forged.public_key = base64.b64encode(
        other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    result = reports.verify_stored(forged)
    assert not result.ok
    failed = {c.name for c in result.checks if not c.ok}
    assert "site key" in failed and "audit entry" in failed


def test_exports_verify_and_tampering_is_caught(signed) -> None:  # type: ignore[no-untyped-def]
    day = signed["day"]
    data = reports.report_data(day - timedelta(days=1), day)
    assert list(data.signed) == [day.isoformat()]
    # JSON envelope.
    env = reports.envelope_json(signed["report"]).encode()
    assert reports.verify_file(env, "r.json").ok
    forged_env = json.loads(env)
    forged_env["payload"] = forged_env["payload"].replace(
        '"recorded_seconds":600.0', '"recorded_seconds":6000.0'
    )
    assert not reports.verify_file(json.dumps(forged_env).encode(), "r.json").ok
    # CSV: the table must be what was signed.
    text = reports.render_csv(data)
    checked = reports.verify_file(text.encode(), "r.csv")
    assert checked.ok, checked.to_dict()
    assert any(c.name == "unsigned days" for c in checked.checks)
    row = next(ln for ln in text.splitlines() if ln.startswith(f"{day.isoformat()},CAM-002,"))
    altered = text.replace(row, row.replace(",600.0,", ",86400.0,", 1))
    bad = reports.verify_file(altered.encode(), "r.csv")
    assert not bad.ok and any("differ" in c.detail for c in bad.checks)
    # PDF: the envelope is attached; the signed data verifies; a changed byte in it fails.
    pdf = reports.render_pdf(data)
    assert pdf.startswith(b"%PDF") and b"vigil-report-" in pdf
    assert reports.verify_file(pdf, "r.pdf").ok
    assert reports.render_pdf(data) == pdf  # deterministic rendering
    digest = signed["report"].digest
    broken = pdf.replace(digest.encode(), ("0" * 64).encode())
    assert not reports.verify_file(broken, "r.pdf").ok
    assert not reports.verify_file(b"%PDF-1.4 nothing", "x.pdf").ok
    assert not reports.verify_file(b"hello", "x.txt").ok


def test_report_rows_of_a_signed_day_come_from_its_signature(signed) -> None:  # type: ignore[no-untyped-def]
    day = signed["day"]
    CoverageDay.objects.filter(day=day).update(recorded_seconds=1)
    rows = reports.report_data(day, day).rows
    assert next(r for r in rows if r["camera"] == "CAM-001")["recorded_seconds"] == 600


def test_report_and_verify_commands(demo_data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    day = (coverage.local_day(timezone.now()) - timedelta(days=2)).isoformat()
    signed = run_vigil(["retention", "sign", "--day", day], demo_data_dir, check=True)
    assert "sha256" in signed.stdout
    for fmt in ("csv", "pdf", "json"):
        out = tmp_path / f"report.{fmt}"
        run_vigil(
            [
                "retention",
                "report",
                "--from",
                day,
                "--to",
                day,
                "--format",
                fmt,
                "--output",
                str(out),
            ],
            demo_data_dir,
            check=True,
        )
        verified = run_vigil(["retention", "verify", str(out)], demo_data_dir)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "matches its signature" in verified.stdout
    text = (tmp_path / "report.csv").read_text()
    (tmp_path / "bad.csv").write_text(text.replace("yes", "no", 1))
    bad = run_vigil(["retention", "verify", str(tmp_path / "bad.csv")], demo_data_dir)
    assert bad.returncode == 1 and "NOT VALID" in bad.stdout
    stored = run_vigil(["retention", "verify", "--day", day], demo_data_dir)
    assert stored.returncode == 0
    table = run_vigil(["retention", "report", "--from", day], demo_data_dir, check=True)
    assert "CAM-086" in table.stdout and "signed" in table.stdout


def test_segment_rows_are_untouched_by_coverage(site) -> None:  # type: ignore[no-untyped-def]
    before = Segment.objects.count()
    coverage.compute_day(site["day"])
    assert Segment.objects.count() == before
