"""The export worker: runs extraction jobs into signed evidence packages.

``vigil export-worker`` is its own process (``vigil demo`` supervises it beside the web
and the recorders). An extraction reads and hashes up to gigabytes and a redaction runs
a face detector over every frame for minutes: in the web process it would hold the GIL
against page requests, and a crash of either would take the other down.

Jobs are rows (``ExportJob``). A worker claims one by setting a lease (owner, expiry)
that it renews as it reports progress; a worker that dies leaves the lease to expire and
the job is claimed again. Work happens in ``exports/.work/<job>/`` and clips finished by
an earlier attempt are kept there and listed in the job's checkpoint, so a restarted job
resumes after the last finished clip. The package appears under ``exports/<name>/`` by
one rename when it is complete, signed and fsynced, in the same step as its database row.

The job acts as the IT staff member who created it: the permission service is asked
again (and audits ``footage.export`` per camera) when the job starts and before the
package is published, so a revoked or expired grant stops it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from vigil import __version__
from vigil.access import package as pkg
from vigil.access import services
from vigil.access.models import (
    Decision,
    ExportJob,
    FootageRequest,
    JobState,
    Package,
)
from vigil.access.services import add_custody
from vigil.accounts.actor import Actor
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import AccessDenied, decide
from vigil.media import export as media_export
from vigil.recording.models import Segment
from vigil.recording.storage import fsync_dir
from vigil.school.models import Camera, School

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
REPORT_EVERY = 0.5  # seconds between progress writes
# Set on SIGTERM: the running job goes back to the queue at its next progress step
# (keeping its finished clips) instead of waiting for its lease to expire.
STOP = threading.Event()


class JobStopped(Exception):
    """The job was cancelled or another worker took it over."""


class JobFailed(Exception):
    """The job cannot finish; the message is for the IT staff."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_root() -> Path:
    return Path(settings.PATHS.exports) / ".work"


def _dead_owners_here() -> list[str]:
    """Workers of this machine that hold a lease but whose process is gone (a restart,
    a crash): their jobs need not wait for the lease to run out."""
    prefix = f"{socket.gethostname()}:"
    dead = []
    owners = ExportJob.objects.filter(state=JobState.RUNNING, lease_owner__startswith=prefix)
    for owner in owners.values_list("lease_owner", flat=True).distinct():
        pid = owner[len(prefix) :]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(owner)
        except PermissionError:  # alive, another user's
            pass
    return dead


def claim(owner: str, now: datetime | None = None) -> ExportJob | None:
    """Take the oldest queued job, or a running one whose worker stopped renewing (lease
    run out) or, on this machine, whose worker process no longer exists."""
    now = now or timezone.now()
    dead = _dead_owners_here()
    with transaction.atomic():
        job = (
            ExportJob.objects.select_for_update()
            .filter(
                Q(state=JobState.QUEUED)
                | Q(state=JobState.RUNNING, lease_until__lt=now)
                | Q(state=JobState.RUNNING, lease_until__isnull=True)
                | Q(state=JobState.RUNNING, lease_owner__in=dead)
            )
            .order_by("created_at", "pk")
            .first()
        )
        if job is None:
            return None
        resumed = job.state == JobState.RUNNING
        job.state = JobState.RUNNING
        job.lease_owner = owner
        job.lease_until = now + LEASE
        job.attempts += 1
        job.started_at = job.started_at or now
        job.stage = _("Starting")
        job.save()
        record(
            Actor.system("export-worker"),
            "export.start",
            job,
            detail={"attempt": job.attempts, "worker": owner, "taken_over": resumed},
        )
    return job


@dataclass
class _Run:
    job: ExportJob
    owner: str
    actor: Actor
    work: Path
    last_report: float = 0.0
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def report(self, stage: str, progress: float, force: bool = False) -> None:
        """Renew the lease and show progress; stop if the job was cancelled or lost."""
        if STOP.is_set():
            ExportJob.objects.filter(
                pk=self.job.pk, state=JobState.RUNNING, lease_owner=self.owner
            ).update(
                state=JobState.QUEUED,
                lease_owner="",
                lease_until=None,
                stage=_("Waiting for the export worker"),
                checkpoint=self.checkpoint,
            )
            raise JobStopped(self.job.pk)
        now = time.monotonic()
        if not force and now - self.last_report < REPORT_EVERY:
            return
        self.last_report = now
        updated = ExportJob.objects.filter(
            pk=self.job.pk, state=JobState.RUNNING, lease_owner=self.owner
        ).update(
            stage=stage[:200],
            progress=max(0.0, min(1.0, progress)),
            lease_until=timezone.now() + LEASE,
            checkpoint=self.checkpoint,
        )
        if not updated:
            raise JobStopped(self.job.pk)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_grant(run: _Run, req: FootageRequest, *, audit: bool) -> None:
    """The job's grant must still cover every camera (revocation, expiry stop it): the
    same check as ``services.export_grant``, which authorises (and audits) each camera.
    Without ``audit`` (a check again before publishing) it only decides, and audits
    through ``export_grant`` when that stops the job."""
    assert run.actor.user is not None
    if not audit:
        decisions = [
            decide(run.actor.user, Action.EXPORT, rng) for rng in services.request_ranges(req)
        ]
        if decisions and all(d.allowed and d.grant_id == run.job.grant_id for d in decisions):
            return
    try:
        grant = services.export_grant(run.actor, req)
    except AccessDenied as exc:
        raise JobFailed(
            _("The access grant no longer allows this extraction: %(reason)s")
            % {"reason": exc.decision.reason}
        ) from None
    if grant.pk != run.job.grant_id:
        raise JobFailed(
            _("The access grant no longer allows this extraction: %(reason)s")
            % {"reason": _("another grant")}
        )


def _sources(camera: Camera, start: datetime, end: datetime) -> list[media_export.SourceSegment]:
    rows = (
        Segment.objects.filter(camera=camera, start__lt=end, end__gt=start)
        .select_related("volume")
        .order_by("start")
    )
    return [
        media_export.SourceSegment(
            path=Path(s.volume.path) / s.path,
            start_utc=s.start.timestamp(),
            end_utc=s.end.timestamp(),
            sha256=s.sha256,
            ref=s.path,
        )
        for s in rows
    ]


def _hash_file(path: Path) -> tuple[str, int]:
    import hashlib

    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _watermark_lines(req: FootageRequest) -> list[str]:
    school = School.objects.first()
    with translation.override(settings.LANGUAGE_CODE):
        return [
            _("Request %(number)s · for %(recipient)s") % {
                "number": req.number, "recipient": req.recipient
            },
            _("%(school)s · released %(date)s") % {
                "school": school.name if school else "Vigil",
                "date": timezone.localdate().isoformat(),
            },
        ]  # fmt: skip


def run_job(job: ExportJob, owner: str) -> Package | None:
    """Run a claimed job to its end: a package, a failure, or a stop."""
    actor = Actor(user=job.created_by, via="system")
    work = work_root() / str(job.pk)
    run = _Run(job, owner, actor, work, checkpoint=dict(job.checkpoint or {}))
    try:
        result = _run(run)
    except JobStopped:
        log.info("export job %s stopped (cancelled or taken over)", job.pk)
        return None
    except Exception as exc:
        message = str(exc) if isinstance(exc, JobFailed | media_export.ExportError) else repr(exc)
        if not isinstance(exc, JobFailed | media_export.ExportError):
            log.exception("export job %s failed", job.pk)
        _fail(run, message)
        return None
    shutil.rmtree(work, ignore_errors=True)
    return result


def _fail(run: _Run, message: str) -> None:
    with transaction.atomic():
        updated = ExportJob.objects.filter(
            pk=run.job.pk, state=JobState.RUNNING, lease_owner=run.owner
        ).update(
            state=JobState.FAILED,
            error=message[:4000],
            stage=_("Stopped by an error"),
            finished_at=timezone.now(),
            lease_until=None,
            checkpoint=run.checkpoint,
        )
        if updated:
            record(
                Actor.system("export-worker"),
                "export.fail",
                run.job,
                outcome="failure",
                detail={"error": message[:500], "attempt": run.job.attempts},
            )


def _run(run: _Run) -> Package:
    job = ExportJob.objects.select_related("request", "created_by").get(pk=run.job.pk)
    req = job.request
    _check_grant(run, req, audit=True)
    run.report(_("Finding the footage"), 0.0, force=True)
    options = job.options or {}
    redact = bool(options.get("redact"))
    watermark = bool(options.get("watermark"))
    reencoded = redact or watermark
    originals = run.work / "original"
    release = run.work / "release"
    originals.mkdir(parents=True, exist_ok=True)
    if reencoded:
        release.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = run.checkpoint.setdefault("clips", {})
    cameras = list(req.cameras.order_by("code"))
    plans: list[tuple[Camera, list[media_export.Span]]] = []
    for camera in cameras:
        sources = _sources(camera, req.footage_start, req.footage_end)
        spans = (
            media_export.plan_spans(
                sources, req.footage_start.timestamp(), req.footage_end.timestamp()
            )
            if sources
            else []
        )
        plans.append((camera, spans))
    total_bytes = (
        sum(s.file_size for _c, spans in plans for span in spans for s in span.segments) or 1
    )
    if not any(spans for _c, spans in plans):
        raise JobFailed(_("No recorded footage of these cameras in the requested range."))
    copy_share = 0.1 if reencoded else 0.95
    copied = 0
    clips: list[dict[str, Any]] = []
    for camera, spans in plans:
        for span in spans:
            first = max(req.footage_start.timestamp(), span.segments[0].source.start_utc)
            name = f"{camera.code}_{_utc(first):%Y%m%dT%H%M%S}Z.mp4"
            path = originals / name
            span_bytes = sum(s.file_size for s in span.segments)
            meta = done.get(name)
            if meta and path.exists() and _hash_file(path) == (meta["sha256"], meta["size"]):
                log.info("export job %s: reusing %s from an earlier attempt", job.pk, name)
                copied += span_bytes
                clips.append(meta)
                continue
            path.unlink(missing_ok=True)
            base = copied

            def on_copy(n: int, _total: int, base: int = base, code: str = camera.code) -> None:
                run.report(
                    _("Copying %(camera)s") % {"camera": code},
                    copy_share * (base + n) / total_bytes,
                )

            try:
                result = media_export.assemble_clip(span, path, progress=on_copy)
            except media_export.SourceAltered as exc:
                raise JobFailed(
                    _("A recorded segment changed after it was recorded; nothing was "
                      "released. %(detail)s") % {"detail": exc}
                ) from exc  # fmt: skip
            copied += span_bytes
            meta = {
                "file": name,
                "camera": camera.code,
                "camera_name": camera.name,
                "start_utc": _iso(_utc(result.start_utc)),
                "end_utc": _iso(_utc(result.end_utc)),
                "origin_utc": _iso(_utc(result.origin_utc)),
                "duration": round(result.duration, 3),
                "frames": result.frames - result.preroll_frames,
                "preroll_frames": result.preroll_frames,
                "codec": result.codec,
                "width": result.width,
                "height": result.height,
                "audio": result.has_audio,
                "sha256": result.sha256,
                "size": result.size,
                "sources": [
                    {
                        "segment": use.segment.ref,
                        "start_utc": _iso(_utc(use.segment.start_utc)),
                        "end_utc": _iso(_utc(use.segment.end_utc)),
                        "ingest_sha256": use.segment.sha256,
                        # whole in the clip: anyone can hash these bytes against the
                        # ingest hash; cut by the range: hashed against it here
                        "embedded": (
                            {"offset": use.embedded_at, "size": use.size}
                            if use.embedded_at is not None
                            else None
                        ),
                        "checked_at_export": (
                            use.checked_sha256 == use.segment.sha256 if use.checked_sha256 else None
                        ),
                    }
                    for use in result.sources
                ],
            }
            done[name] = meta
            clips.append(meta)
            run.report(
                _("Copied %(camera)s") % {"camera": camera.code},
                copy_share * copied / total_bytes,
                force=True,
            )
    released: dict[str, Any] = run.checkpoint.setdefault("released", {})
    if reencoded:
        from vigil.access.release import redact_clip, watermark_clip

        lines = _watermark_lines(req) if watermark else []
        frames_total = sum(c["frames"] for c in clips) or 1
        frames_before = 0
        for clip in clips:
            name = clip["file"]
            out = release / name
            meta = released.get(name)
            if meta and out.exists() and _hash_file(out) == (meta["sha256"], meta["size"]):
                log.info("export job %s: reusing released %s from an earlier attempt", job.pk, name)
                frames_before += clip["frames"]
                continue
            out.unlink(missing_ok=True)
            before = frames_before

            def on_frames(share: float, before: int = before, clip: dict[str, Any] = clip) -> None:
                run.report(
                    _("Redacting %(file)s") % {"file": clip["file"]} if redact
                    else _("Watermarking %(file)s") % {"file": clip["file"]},
                    copy_share + (1 - copy_share - 0.02)
                    * (before + share * clip["frames"]) / frames_total,
                )  # fmt: skip

            fps = clip["frames"] / clip["duration"] if clip["duration"] else 10.0
            if redact:
                info = redact_clip(
                    originals / name,
                    out,
                    frames=clip["frames"],
                    fps=fps,
                    persons=bool(options.get("persons")),
                    watermark_lines=lines,
                    keep=options.get("keep") or [],
                    progress=on_frames,
                ).describe()
            else:
                n = watermark_clip(originals / name, out, frames=clip["frames"], lines=lines,
                                   progress=on_frames)  # fmt: skip
                info = {"method": "watermark only", "frames": n, "watermark": True}
            sha, size = _hash_file(out)
            released[name] = {"sha256": sha, "size": size, "treatment": info}
            frames_before += clip["frames"]
            run.report(_("Released copy of %(file)s ready") % {"file": name}, 0.97, force=True)
    run.report(_("Signing the package"), 0.98, force=True)
    return _publish(run, job, req, clips, released if reencoded else None)


def _manifest(
    job: ExportJob, req: FootageRequest, clips: list[dict[str, Any]],
    released: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    school = School.objects.first()
    grant = job.grant
    approvals = [
        {
            "by": d.decided_by.get_username(),
            "name": d.decided_by.display_name,
            "role": d.decided_by.role,
            "on_behalf_of": d.on_behalf_of.get_username() if d.on_behalf_of else None,
            "verdict": d.verdict,
            "at": _iso(d.decided_at),
            "note": d.reason,
        }
        for d in req.decisions.select_related("decided_by", "on_behalf_of").filter(
            verdict=Decision.Verdict.APPROVE
        )
    ]
    out_clips = []
    for clip in clips:
        entry = {k: v for k, v in clip.items() if k not in ("sha256", "size", "sources")}
        entry["file"] = f"data/{clip['file']}"
        if released is None:
            entry["sources"] = clip["sources"]
        if released is not None:
            rel = released[clip["file"]]
            entry["sha256"] = rel["sha256"]
            entry["size"] = rel["size"]
            entry["treatment"] = rel["treatment"]
            entry["audio"] = False
            entry["derived_from"] = {
                "file": clip["file"],
                "sha256": clip["sha256"],
                "size": clip["size"],
                "method": "stream copy of the recorded segments",
                "kept_at": "the school (not released)",
                "sources": clip["sources"],
            }
        else:
            entry["sha256"] = clip["sha256"]
            entry["size"] = clip["size"]
            entry["treatment"] = {"method": "stream copy (no re-encoding)"}
        out_clips.append(entry)
    return {
        "package": "",  # filled in by the caller
        "created_at": "",
        "site": {
            "school": school.name if school else "",
            "installation": str(school.installation_id) if school else "",
            "software": f"vigil {__version__}",
        },
        "request": {
            "number": req.number,
            "kind": req.kind,
            "form": req.form,
            "purpose": req.purpose,
            "subject": req.subject,
            "requester": {
                "username": req.requester.get_username(),
                "name": req.requester.display_name,
                "role": req.requester.role,
                "organisation": req.organisation,
            },
            "recipient": req.recipient,
            "submitted_at": _iso(req.submitted_at),
            "cameras": sorted(c.code for c in req.cameras.all()),
            "footage_start": _iso(req.footage_start),
            "footage_end": _iso(req.footage_end),
        },
        "approvals": approvals,
        "grant": {
            "id": grant.pk,
            "grantee": grant.grantee.get_username(),
            "actions": grant.action_list,
            "cameras": sorted(c.code for c in grant.cameras.all()),
            "footage_start": _iso(grant.footage_start),
            "footage_end": _iso(grant.footage_end),
            "valid_from": _iso(grant.valid_from),
            "valid_until": _iso(grant.valid_until),
        },
        "hold": ({"id": req.hold.pk, "placed_at": _iso(req.hold.placed_at)} if req.hold else None),
        "export": {
            "job": job.pk,
            "by": job.created_by.get_username(),
            "started_at": _iso(job.started_at or timezone.now()),
            "attempts": job.attempts,
            "released_copy": released is not None,
        },
        "clips": out_clips,
    }


README = """Gói bằng chứng hình ảnh camera / Camera footage evidence package
=================================================================

Gói này do hệ thống Vigil của nhà trường tạo ra và ký số (Ed25519).
This package was made and signed (Ed25519) by the school's Vigil system.

Kiểm tra / To check it:

    vigil verify <gói.zip hoặc thư mục / package.zip or folder>

Không có Vigil / Without Vigil:
  1. sha256sum -c manifest-sha256.txt            (dữ liệu / the footage)
  2. SHA-256 của mọi tệp khác phải khớp manifest.json ("files").
     Every other file's SHA-256 must match manifest.json ("files").
  3. manifest.json.sig là chữ ký Ed25519 (base64) của manifest.json bằng khóa
     site-key.pub; so dấu vân tay khóa với dấu vân tay nhà trường công bố.
     manifest.json.sig is the Ed25519 signature (base64) of manifest.json with the
     key in site-key.pub; compare its fingerprint with the one the school publishes.
  4. custody.jsonl: mỗi dòng là một sự kiện (tạo, tải về...), chứa SHA-256 của dòng
     trước (dòng đầu: của manifest.json) và chữ ký của chính nó.
     Each line is one event (created, downloaded, ...) with the SHA-256 of the line
     before (the first: of manifest.json) and its own signature.
"""


def _publish(
    run: _Run,
    job: ExportJob,
    req: FootageRequest,
    clips: list[dict[str, Any]],
    released: dict[str, Any] | None,
) -> Package:
    from vigil.core.keys import public_key_bytes, sign

    exports = Path(settings.PATHS.exports)
    name = f"{req.number}-E{job.pk}"
    staging = run.work / name
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    source_dir = run.work / ("release" if released is not None else "original")
    payload: dict[str, tuple[str, int]] = {}
    for clip in clips:
        src = source_dir / clip["file"]
        dst = staging / "data" / clip["file"]
        os.link(src, dst)  # same filesystem: no second copy of the footage
        meta = released[clip["file"]] if released is not None else clip
        payload[f"data/{clip['file']}"] = (meta["sha256"], meta["size"])
    now = timezone.now()
    manifest = _manifest(job, req, clips, released)
    manifest["package"] = name
    manifest["created_at"] = _iso(now)
    manifest_bytes = pkg.write_package(
        staging,
        manifest,
        payload,
        sign=sign,
        public_key=public_key_bytes(),
        readme=README,
    )
    _check_grant(run, req, audit=False)
    run.report(_("Publishing"), 0.99, force=True)
    final = exports / name
    originals_dir = exports / f"{name}.original"
    with transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        if locked.state != JobState.RUNNING or locked.lease_owner != run.owner:
            raise JobStopped(job.pk)
        package = Package.objects.create(
            name=name,
            job=job,
            request=req,
            created_at=now,
            manifest=manifest_bytes.decode("utf-8"),
            manifest_sha256=pkg.sha256_hex(manifest_bytes),
            size_bytes=sum(n for _h, n in payload.values()),
            redacted=released is not None,
        )
        add_custody(
            package,
            "created",
            run.actor,
            {
                "job": job.pk,
                "attempts": job.attempts,
                "worker": run.owner,
                "files": len(payload),
            },
            at=now,
            root=staging,
        )
        if final.exists() or originals_dir.exists():  # evidence is never overwritten
            raise JobFailed(_("%(path)s already exists; it was left alone.") % {"path": final})
        os.replace(staging, final)
        if released is not None:
            os.replace(run.work / "original", originals_dir)
        fsync_dir(exports)
        locked.state = JobState.DONE
        locked.progress = 1.0
        locked.stage = _("Package ready")
        locked.finished_at = timezone.now()
        locked.lease_until = None
        locked.save()
        FootageRequest.objects.filter(pk=req.pk, provided_at__isnull=True).update(provided_at=now)
        record(
            run.actor,
            "package.create",
            package,
            detail={
                "request": req.number,
                "job": job.pk,
                "manifest_sha256": package.manifest_sha256,
                "files": {k: v[0] for k, v in payload.items()},
                "released_copy": released is not None,
            },
        )
    return package


def run_pending(owner: str | None = None, *, limit: int | None = None) -> int:
    """Claim and run jobs until none is waiting (or ``limit`` were run)."""
    owner = owner or worker_name()
    count = 0
    while (limit is None or count < limit) and not STOP.is_set():
        job = claim(owner)
        if job is None:
            break
        run_job(job, owner)
        count += 1
    return count


def loop(owner: str | None = None, *, idle: float = 2.0) -> None:  # pragma: no cover
    owner = owner or worker_name()
    log.info("export worker %s waiting for jobs", owner)
    while not STOP.is_set():
        if run_pending(owner) == 0:
            STOP.wait(idle)
