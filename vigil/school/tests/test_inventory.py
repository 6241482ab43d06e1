from pathlib import Path

import pytest
import yaml

from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.school import inventory, services
from vigil.school.models import Area, Camera, StreamCredential
from vigil.school.validation import ValidationFailed
from vigil.school.vault import decrypt

pytestmark = pytest.mark.django_db
OP = Actor.cli()


def test_yaml_round_trip_is_stable(demo_site, tmp_path: Path) -> None:
    first = inventory.export_yaml(OP)
    path = tmp_path / "site.yaml"
    path.write_text(first, encoding="utf-8")
    result = inventory.import_inventory(OP, path)
    assert result.updated["cameras"] == 86
    assert not result.created
    # Importing changes nothing: the second export is identical.
    assert inventory.export_yaml(OP) == first


def test_csv_round_trip_keeps_credentials(demo_site, tmp_path: Path) -> None:
    cam = Camera.objects.get(code="CAM-001")
    before = decrypt(cam.credential.password_encrypted)
    text = inventory.export_csv(OP)
    assert before not in text  # passwords are never exported
    assert text.splitlines()[0].startswith("code,name,area,recorder")
    assert len(text.strip().splitlines()) == 87
    path = tmp_path / "cams.csv"
    path.write_text(text, encoding="utf-8")
    inventory.import_inventory(OP, path)
    cam.refresh_from_db()
    assert decrypt(cam.credential.password_encrypted) == before
    assert inventory.export_csv(OP) == text


def test_full_site_yaml_into_an_empty_database(
    demo_site, tmp_path: Path, django_db_blocker
) -> None:
    doc = yaml.safe_load(inventory.export_yaml(OP))
    # Rename every code so the import creates a complete second site.
    for section in ("departments", "areas", "recorders", "cameras", "suppliers"):
        for item in doc[section]:
            item["code"] = "X" + item["code"]
    for a in doc["areas"]:
        a["department"] = "X" + a["department"]
    for d in doc["departments"]:
        d["is_security_office"] = False
    for r in doc["recorders"]:
        for v in r["volumes"]:
            v["path"] += "-copy"
    for c in doc["cameras"]:
        c["area"] = "X" + c["area"]
        c["recorder"] = "X" + c["recorder"]
        c["supplier"] = "X" + c["supplier"]
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = inventory.import_inventory(OP, path)
    assert result.created["cameras"] == 86
    assert result.created["areas"] == Area.objects.filter(code__startswith="X").count()
    assert Camera.objects.count() == 172


def test_every_bad_row_is_reported_and_nothing_is_written(demo_site, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "code,name,area,recorder,main_url,codec,width\n"
        "NEW-1,Ok camera,CONG-CHINH,NVR-01,rtsp://10.1.1.1/a,h264,1920\n"
        "NEW-2,Bad url,CONG-CHINH,NVR-01,http://10.1.1.2/a,h264,1920\n"
        "NEW-3,Bad area,NOWHERE,NVR-01,rtsp://10.1.1.3/a,h264,1920\n"
        "NEW-4,,CONG-CHINH,NVR-09,rtsp://10.1.1.4/a,mjpeg,wide\n"
        "NEW-1,Duplicate,CONG-CHINH,NVR-01,rtsp://10.1.1.5/a,h264,1920\n",
        encoding="utf-8",
    )
    entries_before = AuditEntry.objects.count()
    with pytest.raises(inventory.ImportFailed) as exc:
        inventory.import_inventory(OP, path)
    found = {(e.row, e.field) for e in exc.value.errors}
    assert ("3", "main_url") in found
    assert ("4", "area") in found
    assert {("5", "name"), ("5", "recorder"), ("5", "codec"), ("5", "width")} <= found
    assert ("6", "code") in found
    assert all(e.file == "bad.csv" for e in exc.value.errors)
    assert not Camera.objects.filter(code__startswith="NEW-").exists()
    assert AuditEntry.objects.count() == entries_before


def test_unknown_column_is_an_error(demo_site, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text(
        "code,name,area,recorder,main_url,colour\nN1,A,CONG-CHINH,NVR-01,rtsp://h/a,red\n",
        encoding="utf-8",
    )
    with pytest.raises(inventory.ImportFailed) as exc:
        inventory.import_inventory(OP, path)
    assert [(e.row, e.field, e.reason) for e in exc.value.errors] == [
        ("1", "colour", "unknown column")
    ]


def test_unknown_yaml_key_is_an_error(demo_site, tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "vigil_inventory: 1\ncameras:\n  - code: N1\n    name: A\n    area: CONG-CHINH\n"
        "    recorder: NVR-01\n    main_url: rtsp://h/a\n    zoom: 3\nextras: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(inventory.ImportFailed) as exc:
        inventory.import_inventory(OP, path)
    found = {(e.row, e.field) for e in exc.value.errors}
    assert found == {("cameras[0]", "zoom"), ("top level", "extras")}
    assert not Camera.objects.filter(code="N1").exists()


def test_add_camera_moves_credentials_out_of_the_url(demo_site) -> None:
    cam = services.add_camera(
        OP,
        {
            "code": "GATE-9",
            "name": "Gate 9",
            "area": "CONG-CHINH",
            "recorder": "NVR-03",
            "main_url": "rtsp://admin:Secret123@10.0.0.9:554/Streaming/Channels/101",
            "inspection_date": "2026-01-05",
            "inspection_result": "passed",
        },
    )
    assert cam.main_url == "rtsp://10.0.0.9:554/Streaming/Channels/101"
    assert cam.credential.username == "admin"
    assert b"Secret123" not in bytes(cam.credential.password_encrypted)
    assert "Secret123" in services.stream_url(cam)
    assert cam.counts_in_service
    entry = AuditEntry.objects.filter(action="camera.create").latest("seq")
    assert "Secret123" not in entry.detail_json


def test_duplicate_code_and_malformed_url_are_clear_errors(demo_site) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.add_camera(
            OP,
            {
                "code": "CAM-001",
                "name": "x",
                "area": "CONG-CHINH",
                "recorder": "NVR-01",
                "main_url": "rtsp://h/a",
            },
        )
    assert "already exists" in str(exc.value)
    count = StreamCredential.objects.count()
    with pytest.raises(ValidationFailed, match="main_url: the scheme must be rtsp"):
        services.add_camera(
            OP,
            {
                "code": "NEWCAM",
                "name": "x",
                "area": "CONG-CHINH",
                "recorder": "NVR-01",
                "main_url": "ftp://h/a",
            },
        )
    assert not Camera.objects.filter(code="NEWCAM").exists()
    assert StreamCredential.objects.count() == count


def test_in_service_needs_a_passed_inspection(demo_site) -> None:
    cam = services.add_camera(
        OP,
        {
            "code": "NOINSP",
            "name": "x",
            "area": "CONG-CHINH",
            "recorder": "NVR-01",
            "main_url": "rtsp://h/a",
        },
    )
    assert cam.state == Camera.State.IN_SERVICE
    assert not cam.counts_in_service
    assert not Camera.objects.in_service().filter(code="NOINSP").exists()
    from datetime import date

    services.record_inspection(OP, cam, inspected_on=date(2026, 11, 1), result="failed")
    assert not Camera.objects.in_service().filter(code="NOINSP").exists()
    services.record_inspection(OP, cam, inspected_on=date(2026, 11, 2), result="passed")
    assert Camera.objects.in_service().filter(code="NOINSP").exists()
    assert Camera.objects.in_service().count() == 87
