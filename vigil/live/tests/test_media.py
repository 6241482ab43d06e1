"""Media endpoints over HTTP (Django test client): recorded segments served as they are
on disk from the keyframe wanted, H.265 transcoded and cached, and no footage without
the signed-in session, a valid token for it, and the permission service's yes."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from vigil.authz.models import Grant
from vigil.live.tests.footage import utc
from vigil.media.fmp4 import scan
from vigil.recording.models import Segment
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


def open_playback(client: Client, cameras: list[str], **body: Any) -> dict[str, Any]:
    resp = client.post(
        "/api/live/playback", {"cameras": cameras, **body}, content_type="application/json"
    )
    assert resp.status_code == 200, resp.content
    data: dict[str, Any] = resp.json()
    return data


def probe(data: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "served.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info: dict[str, Any] = json.loads(out.stdout)["streams"][0]
    return info


def test_segments_are_served_from_the_keyframe_at_or_before_the_time(
    login: Any, recorded: dict[str, Any], tmp_path: Path
) -> None:
    client = login("totruongbv")
    base = recorded["base"]
    opened = open_playback(client, ["CAM-004"], day="")
    cam = opened["cameras"][0]
    assert cam["allowed"] and cam["base"].startswith("/live/media/")
    origin = opened["start"]
    index = client.get(cam["base"] + "index", {"from": 0, "to": 86400}).json()["segments"]
    assert len(index) == recorded["segments"] == 5  # 3 before the gap, 2 after
    first = index[0]
    row = Segment.objects.get(pk=first["id"])
    assert first["t0"] == pytest.approx(
        (row.start - utc(0)).total_seconds() - _ts(origin), abs=0.01
    )
    assert index[3]["t0"] - index[2]["t1"] == pytest.approx(15, abs=0.2)  # the gap

    resp = client.get(f"{cam['base']}seg/{first['id']}", {"t": "3.5"})
    assert resp.status_code == 200
    assert resp["Content-Type"] == "video/mp4" and resp["Cache-Control"] == "no-store"
    assert resp["X-Vigil-Codec"].startswith("avc1.")
    assert float(resp["X-Vigil-Offset"]) == pytest.approx(first["t0"], abs=0.001)
    assert float(resp["X-Vigil-First"]) == 2.0  # keyframes every 2 s
    assert float(resp["X-Vigil-Last"]) == pytest.approx(10.0, abs=0.01)
    info = scan(Path(row.volume.path) / row.path)
    served = resp.content
    with open(Path(row.volume.path) / row.path, "rb") as f:
        original = f.read()
    assert served[: info.init_size] == original[: info.init_size]
    start_frag = next(fr for fr in info.fragments if fr.base_decode_time == 2 * 90000)
    assert served[info.init_size :] == original[start_frag.offset :]  # not remuxed
    probed = probe(served, tmp_path)
    assert probed["codec_name"] == "h264" and int(probed["nb_read_frames"]) == 80
    assert base  # footage placed where asked


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_h265_segments_are_transcoded_once_and_cached(
    login: Any, recorded: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    import shutil

    from vigil.live.playback import cache_dir

    shutil.rmtree(cache_dir(), ignore_errors=True)
    client = login("totruongbv")
    cam = open_playback(client, ["CAM-001"], day="")["cameras"][0]
    index = client.get(cam["base"] + "index").json()["segments"]
    assert index and all(s["transcode"] for s in index)
    seg = index[0]
    resp = client.get(f"{cam['base']}seg/{seg['id']}", {"t": "0"})
    assert resp.status_code == 200, resp.content
    assert resp["X-Vigil-Transcoded"] == "1" and resp["X-Vigil-Codec"].startswith("avc1.")
    probed = probe(resp.content, tmp_path)
    assert probed["codec_name"] == "h264" and probed["height"] == 720
    cached = list((Path(settings.PATHS.root) / "cache" / "live").glob("*.mp4"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = client.get(f"{cam['base']}seg/{seg['id']}", {"t": "5"})
    assert again.status_code == 200 and cached[0].stat().st_mtime_ns >= mtime
    assert len(list(cached[0].parent.glob("*.mp4"))) == 1  # served from the cache


def test_playback_transcode_cap_answers_busy(
    login: Any, recorded: dict[str, Any], settings: Any
) -> None:
    import shutil

    from vigil.live.playback import cache_dir

    shutil.rmtree(cache_dir(), ignore_errors=True)  # nothing transcoded yet
    settings.VIGIL = settings.VIGIL.model_copy(
        update={"live": settings.VIGIL.live.model_copy(update={"max_playback_transcodes": 0})}
    )
    client = login("totruongbv")
    cam = open_playback(client, ["CAM-001"], day="")["cameras"][0]
    seg = client.get(cam["base"] + "index").json()["segments"][0]
    resp = client.get(f"{cam['base']}seg/{seg['id']}")
    assert resp.status_code == 503 and resp.json()["detail"] == "transcode_busy"
    assert resp["Retry-After"]


def test_media_needs_the_session_the_token_and_the_permission(
    login: Any, users: Any, recorded: dict[str, Any]
) -> None:
    head = login("totruongbv")
    cam = open_playback(head, ["CAM-004"], day="")["cameras"][0]
    seg = head.get(cam["base"] + "index").json()["segments"][0]
    url = f"{cam['base']}seg/{seg['id']}"
    assert head.get(url).status_code == 200
    assert Client().get(url).status_code == 403  # not signed in
    other = login("baove", Client())  # signed in, but another session
    assert other.get(url).status_code == 403
    assert other.get(cam["base"] + "index").status_code == 403
    assert head.get(url.replace(cam["base"][12:20], "AAAAAAAA")).status_code in (403, 404)
    # A segment of another camera is not reachable through this token.
    foreign = Segment.objects.filter(camera__code="CAM-001").first()
    assert foreign is not None
    assert head.get(f"{cam['base']}seg/{foreign.pk}").status_code == 404
    # Live media is guarded the same way.
    live = head.post(
        "/api/live/sessions", {"cameras": ["CAM-004"], "stream": "sub"},
        content_type="application/json",
    ).json()  # fmt: skip
    assert other.get(live["url"]).status_code == 403
    assert Client().get(live["url"]).status_code == 403


def test_a_grant_holder_plays_only_the_granted_range_until_revoked(
    login: Any, users: Any, recorded: dict[str, Any]
) -> None:
    from django.utils import timezone

    base = recorded["base"]
    now = timezone.now()
    grant = Grant.objects.create(
        grantee=users["nghiencuu"], actions="footage.playback",
        footage_start=utc(base + 10), footage_end=utc(base + 25),
        valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=1),
        source="test", created_by=users["hieutruong"],
    )  # fmt: skip
    grant.cameras.add(Camera.objects.get(code="CAM-004"))
    client = login("nghiencuu")
    assert open_playback(client, ["CAM-004"], day="")["cameras"][0]["allowed"] is False
    opened = open_playback(
        client, ["CAM-004"], start=utc(base + 10).isoformat(), end=utc(base + 25).isoformat()
    )
    cam = opened["cameras"][0]
    assert cam["allowed"]
    index = client.get(cam["base"] + "index").json()["segments"]
    assert len(index) == 2  # [0,10) lies before the range; [10,20) and [20,30) overlap it
    resp = client.get(f"{cam['base']}seg/{index[0]['id']}", {"t": "0"})
    assert resp.status_code == 200
    assert float(resp["X-Vigil-First"]) == 0.0  # from the keyframe before the range start
    last = client.get(f"{cam['base']}seg/{index[1]['id']}", {"t": "0"})
    assert float(last["X-Vigil-Last"]) == pytest.approx(5.0, abs=0.01)  # cut at the range end
    grant.revoked_at = timezone.now()
    grant.save()
    assert client.get(f"{cam['base']}seg/{index[0]['id']}").status_code == 403
    assert client.get(cam["base"] + "index").status_code == 403
    refreshed = client.post(
        "/api/live/tokens/refresh", {"token": cam["token"]}, content_type="application/json"
    )
    assert refreshed.status_code == 403


def test_snapshot_endpoint_records_one_audit_entry(login: Any, recorded: dict[str, Any]) -> None:
    from vigil.audit.models import AuditEntry

    client = login("totruongbv")
    opened = open_playback(client, ["CAM-004"], day="")
    token = opened["cameras"][0]["token"]
    at = utc(recorded["base"] + 5).isoformat()
    resp = client.post(
        "/api/live/snapshots", {"token": token, "at": at}, content_type="application/json"
    )
    assert resp.status_code == 201
    entry = AuditEntry.objects.get(action="footage.snapshot")
    assert entry.seq == resp.json()["audit"] and entry.detail["at"].startswith(at[:19])
    other = login("baove", Client())
    denied = other.post(
        "/api/live/snapshots", {"token": token, "at": at}, content_type="application/json"
    )
    assert denied.status_code == 403
    assert AuditEntry.objects.filter(action="footage.snapshot").count() == 1


def test_wall_and_timeline_api(login: Any, recorded: dict[str, Any]) -> None:
    client = login("baove")
    wall = client.get("/api/live/wall", {"layout": 9, "department": "MG"}).json()
    mg = Camera.objects.filter(area__department__code="MG").count()
    assert wall["layout"] == 9 and wall["total"] == mg == 26 and wall["pages"] == 3
    assert [c["department"] for c in wall["cameras"]] == ["MG"] * 9
    assert wall["cameras"][0]["sub_codec"] == "h264"
    status = client.get("/api/live/wall/status", {"cameras": "CAM-004,CAM-005"}).json()
    assert set(status) == {"CAM-004", "CAM-005"} and status["CAM-004"]["tamper"] is False
    base = recorded["base"]
    timeline = client.get(
        "/api/live/timeline",
        {"camera": "CAM-004", "start": utc(base - 10).isoformat(),
         "end": utc(base + 70).isoformat()},
    ).json()  # fmt: skip
    assert timeline["spans"][0][0] == 10.0 and len(timeline["spans"]) == 2
    assert timeline["gaps"][0]["cause"] == "camera_unreachable"
    old = client.get("/api/live/timeline", {"camera": "CAM-004", "day": "2020-01-01"})
    assert old.status_code == 403  # a guard plays back recent footage only
    other = login("ketoan", Client())
    assert other.get("/api/live/wall").json()["total"] == 0
    assert other.get("/api/live/timeline", {"camera": "CAM-004"}).status_code == 403
    assert other.get("/api/live/relays").status_code == 403
    relays = client.get("/api/live/relays").json()
    assert relays["max_transcodes"] == 2 and "sources" in relays
