"""Evidence packages: what they hold, their signature and custody log, the .zip form, and
that one changed byte anywhere fails verification and says where."""

from __future__ import annotations

import base64
import json
import random
import shutil
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.access import package as pkg
from vigil.access import services
from vigil.access.models import CustodyEntry
from vigil.accounts.actor import Actor
from vigil.audit.models import AuditEntry
from vigil.core.keys import fingerprint
from vigil.recording.models import Segment

pytestmark = [pytest.mark.django_db, pytest.mark.footage]


def download(users, package, who="giaovien", tmp: Path | None = None) -> Path:  # type: ignore[no-untyped-def]
    actor = Actor(user=users[who], ip="10.0.0.7")
    _link, token = services.create_download_link(actor, package)
    dl = services.open_download(actor, token)
    out = (tmp or Path(services.package_dir(package).parent)) / f"{package.name}-{who}.zip"
    with open(out, "wb") as f:
        for chunk in dl.chunks():
            f.write(chunk)
    assert out.stat().st_size == dl.size
    return out


def test_package_holds_what_the_issue_lists(users, exported) -> None:  # type: ignore[no-untyped-def]
    package = exported(end=10.2)  # three segments: cut, whole, cut
    root = services.package_dir(package)
    manifest = json.loads((root / "manifest.json").read_text())
    req = package.request
    assert manifest["request"]["number"] == req.number
    assert manifest["request"]["purpose"] == req.purpose
    assert [a["by"] for a in manifest["approvals"]] == ["hieutruong"]
    assert manifest["grant"]["grantee"] == "admin"
    assert "footage.export" in manifest["grant"]["actions"]
    (clip,) = manifest["clips"]
    assert clip["camera"] == "CAM-010"
    assert clip["start_utc"].endswith("Z") and clip["end_utc"].endswith("Z")
    data = root / clip["file"]
    assert pkg.sha256_hex(data.read_bytes()) == clip["sha256"]
    assert manifest["files"][clip["file"]]["sha256"] == clip["sha256"]
    ingest = {s.path: s.sha256 for s in Segment.objects.filter(camera__code="CAM-010")}
    assert clip["sources"]
    whole = data.read_bytes()
    for src in clip["sources"]:
        assert src["ingest_sha256"] == ingest[src["segment"]]
        if src["embedded"] is None:  # cut by the range: hashed at export
            assert src["checked_at_export"] is True
        else:  # whole in the clip: the recorder's file, byte for byte
            at, size = src["embedded"]["offset"], src["embedded"]["size"]
            assert pkg.sha256_hex(whole[at : at + size]) == src["ingest_sha256"]
    assert [s["embedded"] is not None for s in clip["sources"]] == [False, True, False]
    assert manifest["site_key"]["fingerprint"] == fingerprint()
    # the signature is Ed25519 over the manifest's exact bytes, with the site's key
    from vigil.core.keys import public_key

    public_key().verify(
        base64.b64decode((root / "manifest.json.sig").read_bytes()),
        (root / "manifest.json").read_bytes(),
    )
    for name in ("bagit.txt", "manifest-sha256.txt", "README.txt", "site-key.pub"):
        assert manifest["files"][name]["sha256"] == pkg.sha256_hex((root / name).read_bytes())
    assert (root / "manifest-sha256.txt").read_text() == f"{clip['sha256']}  {clip['file']}\n"
    (created,) = [json.loads(x) for x in (root / "custody.jsonl").read_text().splitlines()]
    assert created["event"] == "created" and created["actor"].startswith("admin")
    report = pkg.verify(root, services.site_record(package, exact=True))
    assert report.ok, report.problems


def test_downloads_are_in_the_custody_log_and_audited(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported()
    first = download(users, package, tmp=tmp_path)
    second = download(users, package, who="hieutruong", tmp=tmp_path)
    entries = list(CustodyEntry.objects.filter(package=package).order_by("seq"))
    assert [(e.event, e.actor_username) for e in entries] == [
        ("created", "admin"),
        ("downloaded", "giaovien"),
        ("downloaded", "hieutruong"),
    ]
    # each copy carries the log up to and including its own download
    for path, lines in ((first, 2), (second, 3)):
        report = services.verify_on_site(path)
        assert report.ok, report.problems
        assert [e["event"] for e in report.custody][-1] == "downloaded"
        assert len(report.custody) == lines
        assert report.site_key_matches is True
    downloads = AuditEntry.objects.filter(action="package.download", outcome="success")
    assert downloads.count() == 2
    assert AuditEntry.objects.filter(action="footage.download", outcome="success").count() >= 4
    with zipfile.ZipFile(first) as z:  # an ordinary zip tool reads it
        assert z.testzip() is None
        names = z.namelist()
    assert names[0] == f"{package.name}/bagit.txt" and names[-1] == f"{package.name}/custody.jsonl"


def test_the_sites_copy_is_verified_by_the_board_and_it_only(users, exported) -> None:  # type: ignore[no-untyped-def]
    from vigil.authz.services import AccessDenied

    package = exported()
    with pytest.raises(AccessDenied):  # the requester: they check the copy they hold
        services.verify_package(Actor(user=users["giaovien"]), package)
    assert AuditEntry.objects.filter(action="request.view_all", outcome="denied").count() == 1
    assert not AuditEntry.objects.filter(action="package.verify").exists()
    assert services.verify_package(Actor(user=users["admin"]), package).ok
    assert AuditEntry.objects.get(action="package.verify").detail["valid"] is True


def test_a_link_works_once_for_its_owner_until_it_expires(users, exported) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from vigil.authz.services import AccessDenied

    package = exported()
    owner = Actor(user=users["giaovien"])
    link, token = services.create_download_link(owner, package)
    with pytest.raises(AccessDenied, match="someone else"):
        services.open_download(Actor(user=users["hieutruong"]), token)
    with pytest.raises(AccessDenied, match="not valid"):
        services.open_download(owner, token + "x")
    link.expires_at = timezone.now() - timedelta(seconds=1)
    link.save()
    with pytest.raises(AccessDenied, match="expired"):
        services.open_download(owner, token)
    _link, token = services.create_download_link(owner, package)
    services.open_download(owner, token)
    with pytest.raises(AccessDenied, match="already been used"):
        services.open_download(owner, token)
    denied = AuditEntry.objects.filter(action="package.download", outcome="denied").count()
    assert denied == 4


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def _positions(
    size: int, rng: random.Random, dense_head: int = 160, dense_tail: int = 80
) -> list[int]:
    """Every byte of the head and tail (headers, JSON), and a sample of the rest."""
    head = list(range(min(size, dense_head)))
    tail = list(range(max(0, size - dense_tail), size))
    middle = rng.sample(range(size), min(size, 40))
    return sorted(set(head + tail + middle))


@pytest.mark.slow
def test_one_changed_byte_anywhere_in_the_directory_fails(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported(start=3.0, end=4.5)
    copy = tmp_path / package.name
    shutil.copytree(services.package_dir(package), copy)
    site = services.site_record(package, exact=True)
    rng = random.Random(6)
    checked = 0
    for name in pkg.package_files(copy):
        size = (copy / name).stat().st_size
        for offset in _positions(size, rng):
            _flip(copy / name, offset)
            report = pkg.verify(copy, site)
            _flip(copy / name, offset)  # back as it was
            assert not report.ok, f"{name} byte {offset} changed, still valid"
            assert any(name in p.file.split(" + ") or p.file.startswith(f"{name} line")
                       for p in report.problems), (name, offset, report.problems)  # fmt: skip
            checked += 1
    assert checked > 800
    assert pkg.verify(copy, site).ok  # every flip was undone: the check itself is sound


@pytest.mark.slow
def test_one_changed_byte_anywhere_in_the_zip_fails(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported(start=3.0, end=4.5)
    archive = download(users, package, tmp=tmp_path)
    assert services.verify_on_site(archive).ok
    data = archive.read_bytes()
    with zipfile.ZipFile(archive) as z:
        entries = [(i.header_offset, i.header_offset + 30 + len(i.filename), i.file_size)
                   for i in z.infolist()]  # fmt: skip
        directory = z.start_dir
    # Every byte of the zip's own structures (local headers, size records, directory,
    # end record), and a sample of the contents of every file.
    rng = random.Random(7)
    positions: set[int] = set(range(directory, len(data)))
    for header, start, size in entries:
        positions |= set(range(header, start))
        positions |= set(range(start + size, start + size + 16))  # the data descriptor
        positions |= set(rng.sample(range(start, start + size), min(size, 25)))
    assert len(positions) > 1400
    altered = tmp_path / "altered.zip"
    damaged = bytearray(data)
    for offset in sorted(positions):
        damaged[offset] ^= 0x20
        altered.write_bytes(bytes(damaged))
        damaged[offset] ^= 0x20
        report = pkg.verify(altered)
        assert not report.ok, f"byte {offset} changed, still valid"
        assert report.problems[0].message
    altered.write_bytes(bytes(damaged))
    assert pkg.verify(altered).ok


def test_the_report_says_exactly_what_was_altered(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported()
    root = tmp_path / package.name
    shutil.copytree(services.package_dir(package), root)
    site = services.site_record(package)
    clip = next((root / "data").iterdir())
    _flip(clip, clip.stat().st_size // 2)
    (root / "data" / "extra.mp4").write_bytes(b"not evidence")
    manifest = root / "manifest.json"
    text = manifest.read_text().replace(package.request.purpose, "Mục đích khác")
    manifest.write_text(text)
    report = pkg.verify(root, site)
    messages = [str(p) for p in report.problems]
    assert any(m.startswith(f"data/{clip.name}: content altered") for m in messages)
    assert any(m.startswith("data/extra.mp4: not part of the signed package") for m in messages)
    assert any(
        m.startswith("manifest.json: altered: the signature no longer matches") for m in messages
    )
    assert any("request.purpose" in m and "Mục đích khác" in m for m in messages), (
        messages
    )  # on site: which field of the manifest changed


def test_custody_log_edits_insertions_and_cuts_are_found(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported()
    download(users, package, tmp=tmp_path)
    download(users, package, who="hieutruong", tmp=tmp_path)
    root = services.package_dir(package)
    lines = (root / "custody.jsonl").read_text().splitlines()
    assert len(lines) == 3

    def check(new_lines: list[str], exact: bool = True) -> list[str]:
        copy = tmp_path / "c" / package.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        shutil.copytree(root, copy)
        (copy / "custody.jsonl").write_text("".join(x + "\n" for x in new_lines))
        report = pkg.verify(copy, services.site_record(package, exact=exact))
        return [str(p) for p in report.problems]

    assert check(lines) == []
    edited = json.loads(lines[1])
    edited["actor"] = "someone else"
    assert any("line 2" in m for m in check([lines[0], json.dumps(edited), lines[2]]))
    assert any("line 2" in m for m in check([lines[0], lines[2], lines[1]]))
    assert any("cut" in m for m in check(lines[:2]))  # on site, the missing last line shows
    # offline, a copy made before later downloads is still valid (its log is a prefix)
    copy = tmp_path / "offline" / package.name
    shutil.copytree(root, copy)
    (copy / "custody.jsonl").write_text("".join(x + "\n" for x in lines[:2]))
    assert pkg.verify(copy).ok
    # a line signed with another key fails its signature
    other = Ed25519PrivateKey.generate()
    forged, _h = pkg.custody_line(
        seq=4, prev=json.loads(lines[2])["hash"], at="2026-01-01T00:00:00Z",
        event="downloaded", actor="x", detail={}, sign=other.sign,
    )  # fmt: skip
    assert any("signature" in m for m in check([*lines, forged], exact=False))


def test_a_package_signed_elsewhere_is_not_this_sites(users, exported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = exported()
    root = tmp_path / package.name
    shutil.copytree(services.package_dir(package), root)
    other = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    raw = other.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # re-sign a changed manifest with another key: consistent on its own...
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["site_key"] = {"public_key": base64.b64encode(raw).decode(),
                            "fingerprint": pkg.fingerprint(raw)}  # fmt: skip
    body = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (root / "manifest.json").write_bytes(body)
    (root / "manifest.json.sig").write_bytes(base64.b64encode(other.sign(body)) + b"\n")
    (root / "site-key.pub").write_bytes(base64.b64encode(raw) + b"\n")
    report = pkg.verify(root)
    assert any("custody.jsonl" in p.file for p in report.problems)  # log signed by the site
    # ...and on site the key itself is named as foreign
    report = services.verify_on_site(root)
    assert report.site_key_matches is False
    assert any(p.file == "site-key.pub" and "not this site's key" in p.message
               for p in report.problems)  # fmt: skip


def test_manifest_changes_lists_fields() -> None:
    a = json.dumps({"request": {"purpose": "x", "cameras": ["A"]}}).encode()
    b = json.dumps({"request": {"purpose": "y", "cameras": ["A", "B"]}}).encode()
    assert pkg.manifest_changes(a, b) == [
        "request.cameras[1]: '∅' → 'B'",
        "request.purpose: 'x' → 'y'",
    ]
