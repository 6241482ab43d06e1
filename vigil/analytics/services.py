"""Analytics use cases: what the analyser stores, what the desk searches, what is set.

Three kinds of callers:

* ``vigil analyze`` (``vigil.analytics.runtime``) stores motion events, raises tamper
  alerts (``tamper_<cause>``, through ``vigil.alerts.services``), stores quality
  samples and sums them up per camera-day;
* the pages and the API search motion events (footage-derived pictures of children:
  viewing them is playback of that camera and time, decided and audited once per
  search with ``authorize_many``), show quality, and list cameras for maintenance;
* people with ``site.manage`` set masks and zones, and with ``camera.service`` confirm a
  re-aimed camera's new view.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vigil.accounts.actor import Actor
from vigil.alerts.models import Alert
from vigil.alerts.services import end_condition, raise_alert
from vigil.analytics.models import (
    AnalysisStatus,
    CameraAnalysis,
    MotionEvent,
    QualityDay,
    QualitySample,
)
from vigil.audit.services import record
from vigil.authz.rules import Action
from vigil.authz.services import (
    Decision,
    FootageRange,
    authorize_many,
    cameras_for,
    decide,
    require,
)
from vigil.school.models import Camera
from vigil.vision import motion as vmotion
from vigil.vision.imageops import validate_polygon
from vigil.vision.pipeline import AnalyserConfig
from vigil.vision.quality import (
    CameraSpec,
    DailyQuality,
    QualityIssue,
    QualityThresholds,
)
from vigil.vision.quality import QualitySample as EngineSample
from vigil.vision.tamper import TamperAlert

if TYPE_CHECKING:
    from vigil.accounts.models import User
    from vigil.recording.models import CameraHealth

log = logging.getLogger("vigil.analytics")

TAMPER_PREFIX = "tamper_"
TAMPER_LABELS = {
    "covered": gettext_lazy("camera covered or sprayed"),
    "blurred": gettext_lazy("picture blurred or out of focus"),
    "moved": gettext_lazy("camera moved or turned away"),
    "dark": gettext_lazy("picture too dark"),
    "frozen": gettext_lazy("picture frozen"),
    "video_lost": gettext_lazy("video lost"),
}
# Who is told first (Art. 6, 7.1): the security desk and the heads of the department
# that owns the area; the security head and the board come in by escalation. Video
# problems (frozen, lost) concern IT as well.
TAMPER_AUDIENCE = ("security_guard", "department_head")
TECHNICAL_AUDIENCE = ("security_guard", "department_head", "it_staff")
THUMB_SALT = "vigil.analytics.thumbnail"
THUMB_TOKEN_SECONDS = 15 * 60
SEARCH_LIMIT = 200
MAX_SEARCH_DAYS = 31


def tamper_cause(cause: str) -> str:
    return f"{TAMPER_PREFIX}{cause}"


# --------------------------------------------------------------------------- settings
def settings_for(camera: Camera) -> CameraAnalysis:
    row, _created = CameraAnalysis.objects.get_or_create(camera=camera)
    return row


def analyser_config(camera: Camera, row: CameraAnalysis | None = None) -> AnalyserConfig:
    """The vision engine's configuration for a camera from its settings."""
    row = row or settings_for(camera)
    cfg = settings.VIGIL.analytics
    masks = tuple(tuple((float(x), float(y)) for x, y in poly) for poly in row.masks)
    zones = {name: tuple((float(x), float(y)) for x, y in poly) for name, poly in row.zones.items()}
    return AnalyserConfig(
        motion=vmotion.MotionConfig(threshold=row.threshold, masks=masks, zones=zones),
        tracker=vmotion.TrackerConfig(thumbnail_quality=70),
        quality_interval=float(cfg.quality_interval_seconds),
        spec=CameraSpec(camera.sub_width, camera.sub_height),
        motion_enabled=row.motion_enabled,
        tamper_enabled=row.tamper_enabled,
    )


def _polygons(value: Any, what: str) -> list[list[list[float]]]:
    if not isinstance(value, list) or len(value) > 32:
        raise ValueError(_("%(what)s: a list of at most 32 polygons is expected.") % {"what": what})
    out = []
    for poly in value:
        try:
            pts = [[round(float(p[0]), 4), round(float(p[1]), 4)] for p in poly]
            if len(pts) > 64:
                raise ValueError("too many points")
            validate_polygon([(x, y) for x, y in pts])
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(
                _("%(what)s: each polygon needs 3 to 64 points inside the picture (0-1).")
                % {"what": what}
            ) from exc
        out.append(pts)
    return out


def update_settings(
    actor: Actor,
    camera: Camera,
    *,
    motion_enabled: bool,
    tamper_enabled: bool,
    threshold: int,
    masks: Any,
    zones: Any,
) -> CameraAnalysis:
    """Change what runs on a camera and where motion counts; ``vigil analyze`` picks it
    up within seconds."""
    require(actor, Action.SITE_MANAGE, camera)
    if not 8 <= int(threshold) <= 120:
        raise ValueError(_("The motion threshold must be between 8 and 120."))
    clean_masks = _polygons(masks, _("Masks"))
    if not isinstance(zones, dict) or len(zones) > 16:
        raise ValueError(_("Zones: at most 16 named zones are expected."))
    clean_zones: dict[str, list[list[float]]] = {}
    for name, poly in zones.items():
        label = str(name).strip()[:40]
        if not label or "," in label:
            raise ValueError(_("Zones need a name without commas."))
        clean_zones[label] = _polygons([poly], _("Zones"))[0]
    with transaction.atomic():
        row = settings_for(camera)
        before = {
            "motion": row.motion_enabled,
            "tamper": row.tamper_enabled,
            "threshold": row.threshold,
            "masks": len(row.masks),
            "zones": sorted(row.zones),
        }
        row.motion_enabled = bool(motion_enabled)
        row.tamper_enabled = bool(tamper_enabled)
        row.threshold = int(threshold)
        row.masks_json = json.dumps(clean_masks)
        row.zones_json = json.dumps(clean_zones, ensure_ascii=False)
        row.save()
        record(
            actor,
            "analytics.settings",
            camera,
            detail={
                "before": before,
                "after": {
                    "motion": row.motion_enabled,
                    "tamper": row.tamper_enabled,
                    "threshold": row.threshold,
                    "masks": len(clean_masks),
                    "zones": sorted(clean_zones),
                },
            },
        )
    return row


def accept_view(actor: Actor, camera: Camera, note: str = "") -> CameraAnalysis:
    """The camera was re-aimed on purpose: the analyser relearns its reference view
    (otherwise it keeps reporting "camera moved")."""
    require(actor, Action.CAMERA_SERVICE, camera)
    with transaction.atomic():
        row = settings_for(camera)
        row.view_accepted_at = timezone.now()
        row.save(update_fields=["view_accepted_at", "updated_at"])
        record(actor, "analytics.accept_view", camera, detail={"note": note.strip()[:500]})
    return row


# --------------------------------------------------------------------------- the analyser's writes
def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def thumbs_root() -> Path:
    return Path(settings.PATHS.root) / "analytics" / "thumbs"


def thumb_path(event: MotionEvent) -> Path:
    return thumbs_root() / event.start.astimezone(UTC).strftime("%Y-%m-%d") / f"{event.pk}.jpg"


def motion_started(camera: Camera, ev: vmotion.MotionEvent) -> int:
    row = MotionEvent.objects.create(
        camera=camera,
        start=_utc(ev.start),
        end=None,
        peak_at=_utc(ev.peak_ts),
        peak_score=round(ev.peak_score, 5),
        zones=",".join(ev.zones)[:300],
        box_json=json.dumps([round(v, 4) for v in ev.box]),
        motion_frames=ev.motion_frames,
    )
    return row.pk


def motion_ended(camera: Camera, event_id: int | None, ev: vmotion.MotionEvent) -> int:
    """Close the event (or store it whole if its start was never stored)."""
    if event_id is None:
        event_id = motion_started(camera, ev)
    row = MotionEvent.objects.get(pk=event_id)
    row.end = _utc(ev.end if ev.end is not None else ev.peak_ts)
    row.peak_at = _utc(ev.peak_ts)
    row.peak_score = round(ev.peak_score, 5)
    row.zones = ",".join(ev.zones)[:300]
    row.box_json = json.dumps([round(v, 4) for v in ev.box])
    row.motion_frames = ev.motion_frames
    if ev.thumbnail:
        path = thumb_path(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(ev.thumbnail)
        tmp.replace(path)
        row.has_thumbnail = True
    row.save()
    return event_id


def tamper_raised(camera: Camera, alert: TamperAlert) -> tuple[int, bool]:
    """Raise (or refresh) the camera's ``tamper_<cause>`` alert with its snapshots.

    A camera the recorder already reports offline (``camera_offline``) gets no second
    alert for its lost video: the open one is refreshed instead."""
    cause = str(alert.cause)
    if cause == "video_lost":
        offline = (
            Alert.objects.filter(camera=camera, cause="camera_offline")
            .exclude(state=Alert.State.RESOLVED)
            .first()
        )
        if offline is not None:
            return offline.pk, False
    with translation.override(settings.LANGUAGE_CODE):
        label = str(TAMPER_LABELS.get(cause, cause))
        title = f"{camera.code} {camera.name}: {label}"
        message = _(
            "Seen since %(start)s, raised at %(raised)s (Art. 2.3: cameras must not be "
            "obstructed or disabled). Check the camera and the area."
        ) % {
            "start": timezone.localtime(_utc(alert.started_at)).strftime("%H:%M:%S"),
            "raised": timezone.localtime(_utc(alert.raised_at)).strftime("%H:%M:%S"),
        }
    row, created = raise_alert(
        cause=tamper_cause(cause),
        severity=str(alert.severity),
        title=title,
        message=message,
        camera=camera,
        audience=TECHNICAL_AUDIENCE if cause in ("frozen", "video_lost") else TAMPER_AUDIENCE,
        detail={
            "started_at": _utc(alert.started_at).isoformat(),
            "raised_at": _utc(alert.raised_at).isoformat(),
            "measurements": {k: round(v, 4) for k, v in alert.details.items()},
        },
        actor=Actor.system("analysis"),
        snapshot_before=alert.snapshot_before,
        snapshot_after=alert.snapshot_after,
    )
    return row.pk, created


def tamper_cleared(camera: Camera, alert: TamperAlert) -> int:
    return end_condition(cause=tamper_cause(str(alert.cause)), camera=camera)


def _issue_dict(i: QualityIssue) -> dict[str, Any]:
    return {"code": i.code, "message": i.message, "value": i.value, "limit": i.limit}


def with_main_stream(
    sample: EngineSample, camera: Camera, health: CameraHealth | None
) -> tuple[EngineSample, tuple[int, int, float] | None]:
    """Add the recorded main stream's resolution and bitrate, as the recorder measured
    them, against the camera's spec (Art. 2.1, 8.2) to a sub-stream sample."""
    if health is None or not health.online or not health.width or not health.height:
        return sample, None
    th = QualityThresholds()
    mw, mh, kbps = int(health.width), int(health.height), float(health.bitrate_bps) / 1000.0
    sub = dict(sample.subscores)
    issues = list(sample.issues)
    ratio = (mw * mh) / max(1, camera.width * camera.height)
    sub["resolution"] = min(sub.get("resolution", 100.0), 100.0 * min(1.0, ratio))
    if mw < camera.width or mh < camera.height:
        issues.append(
            QualityIssue(
                "low_resolution",
                f"Recorded resolution {mw}x{mh} is below the camera's specification "
                f"{camera.width}x{camera.height}.",
                ratio,
                1.0,
            )
        )
    if camera.bitrate_kbps and kbps > 0:
        share = kbps / camera.bitrate_kbps
        zero, full = th.bitrate_ramp
        sub["bitrate"] = 100.0 * min(1.0, max(0.0, (share - zero) / (full - zero)))
        if share < th.bitrate_issue:
            issues.append(
                QualityIssue(
                    "low_bitrate",
                    f"Recorded bitrate {kbps:.0f} kbit/s is below the planned "
                    f"{camera.bitrate_kbps} kbit/s: detail is lost to compression.",
                    share,
                    th.bitrate_issue,
                )
            )
        elif share > th.bitrate_high_issue:
            issues.append(
                QualityIssue(
                    "high_bitrate",
                    f"Recorded bitrate {kbps:.0f} kbit/s is well above the planned "
                    f"{camera.bitrate_kbps} kbit/s: the retention budget is at risk.",
                    share,
                    th.bitrate_high_issue,
                )
            )
    total = sum(th.weights.get(k, 0.0) for k in sub)
    score = sum(sub[k] * th.weights.get(k, 0.0) for k in sub) / total if total else 0.0
    blocking = {"blurry", "sharpness_drop", "too_dark", "low_resolution"}
    passed = score >= th.pass_score and not any(i.code in blocking for i in issues)
    combined = replace(
        sample, subscores=sub, issues=tuple(issues), score=round(score, 1), passed=passed
    )
    return combined, (mw, mh, kbps)


def quality_sampled(camera: Camera, sample: EngineSample, taken_at: float) -> QualitySample:
    from vigil.recording.models import CameraHealth

    health = CameraHealth.objects.filter(camera=camera).first()
    fresh = health is not None and (timezone.now() - health.updated_at) < timedelta(minutes=2)
    combined, main = with_main_stream(sample, camera, health if fresh else None)
    when = _utc(taken_at)
    return QualitySample.objects.create(
        camera=camera,
        taken_at=when,
        day=timezone.localtime(when).date(),
        score=combined.score,
        passed=combined.passed,
        sharpness=round(combined.sharpness, 4),
        brightness=round(combined.brightness, 2),
        contrast=round(combined.contrast, 2),
        noise=round(combined.noise, 3),
        dark_clip=round(combined.dark_clip, 4),
        bright_clip=round(combined.bright_clip, 4),
        width=combined.width,
        height=combined.height,
        main_width=main[0] if main else None,
        main_height=main[1] if main else None,
        main_bitrate_kbps=round(main[2], 1) if main else None,
        issues_json=json.dumps([_issue_dict(i) for i in combined.issues], ensure_ascii=False),
    )


def _engine_sample(row: QualitySample) -> EngineSample:
    return EngineSample(
        ts=row.taken_at.timestamp(),
        width=row.width,
        height=row.height,
        sharpness=row.sharpness,
        brightness=row.brightness,
        dark_clip=row.dark_clip,
        bright_clip=row.bright_clip,
        contrast=row.contrast,
        noise=row.noise,
        bitrate_kbps=row.main_bitrate_kbps,
        subscores={},
        score=row.score,
        issues=tuple(
            QualityIssue(i["code"], i["message"], float(i["value"]), float(i["limit"]))
            for i in row.issues
        ),
        passed=row.passed,
    )


def summarize_day(camera: Camera, day: date) -> QualityDay | None:
    """The camera-day verdict from its samples (the vision engine's DailyQuality)."""
    rows = list(QualitySample.objects.filter(camera=camera, day=day).order_by("taken_at"))
    if not rows:
        return None
    daily = DailyQuality()
    daily.extend([_engine_sample(r) for r in rows])
    rep = daily.report()
    passed = rep.passed or rep.samples < settings.VIGIL.analytics.quality_min_samples
    issues = [
        {"code": i.code, "message": i.message, "share": round(i.share, 3)} for i in rep.issues
    ]
    row, _created = QualityDay.objects.update_or_create(
        camera=camera,
        day=day,
        defaults={
            "samples": rep.samples,
            "score": rep.score,
            "worst": rep.worst,
            "pass_rate": round(rep.pass_rate, 3),
            "passed": passed,
            "issues_json": json.dumps(issues, ensure_ascii=False),
            "updated_at": timezone.now(),
        },
    )
    return row


def write_status(rows: list[AnalysisStatus]) -> None:
    AnalysisStatus.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["camera"],
        update_fields=[
            "online",
            "fps",
            "lag_ms",
            "dropped",
            "reference_ready",
            "last_frame_at",
            "last_error",
            "node",
            "updated_at",
        ],
    )


def purge(now: datetime | None = None) -> dict[str, int]:
    """Forget motion events (and thumbnails) and quality samples past their keeping time."""
    cfg = settings.VIGIL.analytics
    now = now or timezone.now()
    motion_cut = now - timedelta(days=cfg.motion_retention_days)
    deleted_events, _by_model = MotionEvent.objects.filter(start__lt=motion_cut).delete()
    root = thumbs_root()
    removed_days = 0
    if root.is_dir():
        for day_dir in root.iterdir():
            try:
                day = datetime.strptime(day_dir.name, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            if day + timedelta(days=1) <= motion_cut:
                shutil.rmtree(day_dir, ignore_errors=True)
                removed_days += 1
    samples_cut = timezone.localdate(now) - timedelta(days=cfg.quality_sample_days)
    deleted_samples, _by = QualitySample.objects.filter(day__lt=samples_cut).delete()
    return {
        "motion_events": deleted_events,
        "thumbnail_days": removed_days,
        "quality_samples": deleted_samples,
    }


# --------------------------------------------------------------------------- searching
@dataclass
class MotionSearch:
    events: list[MotionEvent]
    allowed: list[Camera]
    refused: list[Camera]
    start: datetime
    end: datetime
    truncated: bool
    reason: str = ""


def search_motion(
    actor: Actor,
    *,
    start: datetime,
    end: datetime,
    cameras: list[Camera] | None = None,
    area_code: str = "",
    zone: str = "",
    limit: int = SEARCH_LIMIT,
) -> MotionSearch:
    """Motion events by camera, area and time range, with one audited playback
    decision for the whole search (the thumbnails are footage)."""
    if end <= start:
        raise ValueError(_("The end of the range must be after its start."))
    if end - start > timedelta(days=MAX_SEARCH_DAYS):
        raise ValueError(_("Search at most %(days)d days at a time.") % {"days": MAX_SEARCH_DAYS})
    candidates = cameras_for(actor.user, Action.PLAYBACK)
    if cameras is not None:
        candidates = candidates.filter(pk__in=[c.pk for c in cameras])
    if area_code:
        candidates = candidates.filter(area__code=area_code)
    cams = list(candidates.order_by("code"))
    if not cams:
        require(actor, Action.PLAYBACK)  # nothing this person may search: audited refusal
    decisions = authorize_many(
        actor,
        Action.PLAYBACK,
        [FootageRange(c, start, end) for c in cams],
        purpose="motion events",
    )
    allowed = [c for c in cams if decisions[c.pk].allowed]
    refused = [c for c in cams if not decisions[c.pk].allowed]
    qs = (
        MotionEvent.objects.filter(camera__in=allowed, start__lt=end)
        .exclude(end__lt=start)
        .select_related("camera", "camera__area")
        .order_by("-start")
    )
    if zone:
        qs = qs.filter(zones__contains=zone)
    events = list(qs[: limit + 1])
    reason = str(decisions[refused[0].pk].reason) if refused else ""
    return MotionSearch(
        events=events[:limit],
        allowed=allowed,
        refused=refused,
        start=start,
        end=end,
        truncated=len(events) > limit,
        reason=reason,
    )


def thumbnail_token(user: User, event: MotionEvent) -> str:
    """A short-lived URL token for a thumbnail the user's search was allowed to show."""
    return signing.dumps({"u": user.pk, "e": event.pk}, salt=THUMB_SALT, compress=True)


def state_dir() -> Path:
    """What `vigil analyze` keeps per camera (reference view, latest view)."""
    return Path(settings.PATHS.root) / "analytics" / "state"


def view_path(code: str) -> Path:
    """The camera's latest view (JPEG, grey), for drawing masks and zones."""
    return state_dir() / f"{code}.jpg"


def latest_view(actor: Actor, camera: Camera) -> bytes | None:
    """The camera's latest analysed view (JPEG, for drawing masks and zones), None when
    there is none yet. Managing the camera is not enough: it is a live picture, so it is
    decided and audited as a live view too."""
    require(actor, Action.SITE_MANAGE, camera)
    require(actor, Action.LIVE_VIEW, camera)
    try:
        return view_path(camera.code).read_bytes()
    except OSError:
        return None


def thumbnail_for(user: User | None, token: str) -> bytes | None:
    """The thumbnail of a token issued to ``user`` by an audited search, if it may still
    be seen (the decision is checked again, without a second audit entry)."""
    if user is None or not user.is_authenticated:
        return None
    try:
        data = signing.loads(token, salt=THUMB_SALT, max_age=THUMB_TOKEN_SECONDS)
    except signing.BadSignature:
        return None
    if data.get("u") != user.pk:
        return None
    event = (
        MotionEvent.objects.select_related("camera", "camera__area")
        .filter(pk=data.get("e"))
        .first()
    )
    if event is None or not event.has_thumbnail:
        return None
    decision: Decision = decide(
        user,
        Action.PLAYBACK,
        FootageRange(event.camera, event.start, event.end or event.start + timedelta(seconds=1)),
    )
    if not decision.allowed:
        return None
    try:
        return thumb_path(event).read_bytes()
    except OSError:
        return None


# --------------------------------------------------------------------------- quality views
def quality_days(camera: Camera, days: int = 14) -> list[QualityDay]:
    return list(QualityDay.objects.filter(camera=camera).order_by("-day")[:days])


def latest_sample(camera: Camera) -> QualitySample | None:
    return QualitySample.objects.filter(camera=camera).order_by("-taken_at").first()


@dataclass
class MaintenanceItem:
    camera: Camera
    day: QualityDay


def maintenance_list(user: User | None, *, days: int = 2) -> list[MaintenanceItem]:
    """Cameras whose image quality failed on one of the last ``days`` days (today so
    far included): they are due for cleaning, refocusing or repair (Art. 8.2)."""
    cams = cameras_for(user, Action.HEALTH_VIEW)
    since = timezone.localdate() - timedelta(days=days - 1)
    latest: dict[int, QualityDay] = {}
    for row in (
        QualityDay.objects.filter(camera__in=cams, day__gte=since, passed=False)
        .select_related("camera", "camera__area", "camera__area__department")
        .order_by("day")
    ):
        latest[row.camera_id] = row
    items = [MaintenanceItem(r.camera, r) for r in latest.values()]
    items.sort(key=lambda i: (i.day.score, i.camera.code))
    return items


def status_for(cameras: QuerySet[Camera]) -> dict[int, AnalysisStatus]:
    return {s.camera_id: s for s in AnalysisStatus.objects.filter(camera__in=cameras)}


def score_class(score: float) -> str:
    if math.isnan(score):
        return ""
    return "ok" if score >= 75 else ("warn" if score >= 60 else "bad")
