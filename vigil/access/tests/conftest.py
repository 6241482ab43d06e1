"""Fixtures for the access tests: real recorded segments of demo cameras."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from conftest import footage_dir


@pytest.fixture(autouse=True)
def english():  # type: ignore[no-untyped-def]
    """Service messages in English, so tests can match them (pages stay Vietnamese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def private_data_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Each test its own data directory (exports, volumes, site key): packages are named
    after request numbers, which every test database starts again."""
    from vigil.conf import Paths

    settings.PATHS = Paths(tmp_path / "data")
    settings.PATHS.ensure()
    return settings.PATHS


@pytest.fixture
def record_footage(users):  # type: ignore[no-untyped-def]
    """``record_footage(code, start, seconds)`` -> Segment rows (real fMP4 files)."""
    if not (footage_dir() / "one-by-one-person-detection.mp4").exists():
        pytest.skip(f"real sample footage not found in {footage_dir()}")
    from vigil.access.tests.footage import record

    def _record(code: str, start: datetime, seconds: float, **kw: object) -> list[object]:
        return record(code, start, seconds, **kw)  # type: ignore[arg-type]

    return _record


@pytest.fixture
def past() -> Callable[[float], datetime]:
    """An instant some hours ago, on a whole second (footage exists only in the past)."""
    base = (timezone.now() - timedelta(hours=6)).replace(microsecond=0)
    return lambda seconds=0.0: base + timedelta(seconds=seconds)


@pytest.fixture
def approved_copy(users, record_footage, past):  # type: ignore[no-untyped-def]
    """``approved_copy(seconds=..., start=..., end=..., who="giaovien", kind="complaint")``:
    footage recorded for CAM-010, a copy request filed and approved (no redaction unless
    the requester is outside the school). Returns the request."""
    from vigil.access import services
    from vigil.accounts.actor import Actor
    from vigil.school.models import Camera

    def make(
        *,
        seconds: float = 12.0,
        start: float = 2.3,
        end: float = 7.9,
        who: str = "giaovien",
        kind: str = "complaint",
        code: str = "CAM-010",
        subject: str = "",
        record: bool = True,
        **terms: object,
    ):  # type: ignore[no-untyped-def]
        if record:
            record_footage(code, past(), seconds)
        req = services.file_request(
            Actor(user=users[who]),
            kind=kind,
            form="copy",
            purpose="Bằng chứng cho khiếu nại về giờ đón trẻ",
            cameras=[Camera.objects.get(code=code)],
            start=past(start),
            end=past(end),
            subject=subject or ("Bé An, lớp C2" if kind == "guardian" else ""),
        )
        for approver in ("hieutruong", "phohieutruong")[: req.approvals_needed]:
            req = services.approve(Actor(user=users[approver]), req, **terms)  # type: ignore[arg-type]
            terms = {}  # the first approval sets the terms
        return req

    return make


@pytest.fixture
def exported(users, approved_copy):  # type: ignore[no-untyped-def]
    """``exported(**approved_copy args)`` -> the Package the export worker made."""
    from vigil.access import services, worker
    from vigil.accounts.actor import Actor

    def make(**kw):  # type: ignore[no-untyped-def]
        req = approved_copy(**kw)
        job = services.create_export(Actor(user=users["admin"]), req)
        worker.run_pending("test-worker")
        job.refresh_from_db()
        assert job.state == "done", job.error
        return job.package

    return make
