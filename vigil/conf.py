"""Vigil's data directory and configuration file.

All state lives under ``$VIGIL_DATA_DIR``. When the variable is not set the default is
``/var/lib/vigil`` for root and ``~/.local/share/vigil`` for everyone else.

An optional ``vigil.toml`` in the data directory overrides the defaults below. Every key
is validated: an unknown key or a value of the wrong type stops Vigil with a message that
names the file, the key and the reason, instead of being silently ignored.

This module has no Django imports: ``vigil.settings`` reads it before Django starts.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG_FILE_NAME = "vigil.toml"


class ConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    allowed_hosts: list[str] = ["127.0.0.1", "localhost", "[::1]"]
    # Set when Vigil sits behind an HTTPS reverse proxy: secure cookies and HSTS.
    https: bool = False
    csrf_trusted_origins: list[str] = []


class DatabaseConfig(_Section):
    # Empty: SQLite in the data directory. Otherwise postgresql://user:pass@host:port/name
    url: str = ""


class SecurityConfig(_Section):
    idle_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    absolute_timeout_hours: int = Field(default=12, ge=1, le=7 * 24)
    # QCVN 135:2024/BTTTT and Decision 724/QĐ-BTTTT: lock out after repeated failures.
    lockout_failures: int = Field(default=5, ge=2, le=50)
    lockout_minutes: int = Field(default=5, ge=1, le=24 * 60)
    # Roles that must use TOTP two-factor authentication.
    two_factor_roles: list[str] = ["principal", "board", "it_staff", "security_head"]


class SiteConfig(_Section):
    time_zone: str = "Asia/Ho_Chi_Minh"
    language: Literal["vi", "en"] = "vi"


class AccessConfig(_Section):
    # Security guards may play back recent footage to handle an incident (Art. 7.1);
    # anything older goes through a request to the board (Art. 4.1).
    guard_playback_hours: int = Field(default=24, ge=0, le=24 * 30)
    # Teachers and staff may watch the live view of their own department's areas.
    staff_live_view_own_area: bool = False
    # Department heads may watch the live view of their department's areas (Art. 6).
    department_head_live_view: bool = True
    # Footage requests (vigil.access). A parent's request for their child's footage gets
    # a reply within this many working days and access within this many days (Decree
    # 356/2025/NĐ-CP Art. 5; Law 91/2025/QH15 Art. 24). Working days skip Saturdays,
    # Sundays and the public holidays listed here, e.g. holidays = [2026-04-30, 2026-05-01].
    reply_working_days: int = Field(default=2, ge=1, le=30)
    access_days: int = Field(default=10, ge=1, le=90)
    holidays: list[date] = []
    # Two board members must approve a copy that leaves the school (for a parent or an
    # outside party), and any request from an outside unit or researcher (Art. 4.2).
    two_person_approval_copies: bool = True
    two_person_approval_outside: bool = True
    # How long an approved request's access grants stay valid unless the approver says
    # otherwise, and the longest an approver may choose.
    grant_validity_days: int = Field(default=14, ge=1, le=365)
    grant_validity_max_days: int = Field(default=90, ge=1, le=3650)
    # A download link for an evidence package works this long, once.
    download_link_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _validity_within_maximum(self) -> AccessConfig:
        if self.grant_validity_days > self.grant_validity_max_days:
            raise ValueError("grant_validity_days cannot exceed grant_validity_max_days")
        return self


class RecordingConfig(_Section):
    segment_seconds: int = Field(default=10, ge=2, le=600)


class RetentionConfig(_Section):
    # Art. 5: footage is kept at least this many days. The site policy page may raise the
    # floor (per site or per camera) but never lower it below this value.
    floor_days: int = Field(default=20, ge=1, le=3650)
    # Space kept free on every volume, in percent of its capacity: the capacity plan counts
    # only the rest as usable, and the retention sweep deletes to keep at least this free.
    reserve_percent: float = Field(default=10, ge=0, le=50)
    # The sweep also keeps at least this many minutes of recording free on a volume
    # (at the volume's measured write rate), whichever of the two is larger.
    min_free_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # When only floor or held footage is left, recording on the volume pauses once free
    # space falls under this many minutes of recording (docs/decisions/0010), and resumes
    # at twice that.
    stop_free_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # How often `vigil retention sweep --loop` sweeps every volume.
    sweep_interval_seconds: int = Field(default=60, ge=5, le=3600)
    # Segments deleted per transaction (short transactions keep recording writes flowing).
    batch_segments: int = Field(default=200, ge=1, le=5000)
    # Most segments one sweep deletes for space, and for the ceiling (the rest waits for
    # the next sweep: a wrong clock can never purge much at once).
    max_deletions_per_sweep: int = Field(default=20000, ge=1, le=10_000_000)
    max_ceiling_deletions_per_sweep: int = Field(default=2000, ge=1, le=10_000_000)
    # The retention clock may run at most this far ahead of the footage recorded since
    # the last sweep (protection against a system clock that jumps forward).
    clock_slack_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # Window over which a camera's bitrate is measured from its segments.
    bitrate_window_hours: int = Field(default=24, ge=1, le=24 * 14)
    # A day's coverage report is signed this long after the day ends (late segments).
    report_grace_minutes: int = Field(default=60, ge=0, le=24 * 60)


class AnalyticsConfig(_Section):
    # `vigil analyze`: frames analysed per second of each camera's sub-stream.
    fps: float = Field(default=5.0, gt=0, le=30)
    # Seconds between image-quality samples of a camera (Art. 2.1, 8.2).
    quality_interval_seconds: int = Field(default=60, ge=10, le=3600)
    # A camera-day needs at least this many samples before it can fail the quality check.
    quality_min_samples: int = Field(default=10, ge=1, le=10000)
    # Motion events and their thumbnails are images of the children: kept no longer than
    # this many days (the footage itself is kept for the retention floor).
    motion_retention_days: int = Field(default=20, ge=1, le=3650)
    # Quality samples are kept this many days (the per-day scores are kept).
    quality_sample_days: int = Field(default=30, ge=1, le=3650)
    # How often the analyser's learned per-camera state is saved (and on shutdown).
    state_save_minutes: int = Field(default=5, ge=1, le=24 * 60)
    # `vigil analyze` shares the cameras among this many processes (0 = one per CPU
    # core): decoding and analysis in one interpreter stop at about one core.
    processes: int = Field(default=0, ge=0, le=64)
    # Analysis threads in each process.
    threads: int = Field(default=1, ge=1, le=64)


class AlertsConfig(_Section):
    # Unacknowledged alerts go to the security head after this many minutes, and to the
    # board (principal and board members) after board_after_minutes (Art. 7.1).
    security_head_after_minutes: int = Field(default=10, ge=1, le=7 * 24 * 60)
    board_after_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # Severities that escalate ("info" never does).
    escalate_severities: list[Literal["warning", "critical"]] = ["warning", "critical"]
    # Base URL put in e-mails and webhooks to link to the alert (empty: from [server]).
    site_url: str = ""
    # Webhooks receive every alert event as signed JSON (HMAC-SHA256, see docs).
    webhook_urls: list[str] = []
    # Empty: a random secret kept in keys/alerts-webhook.key.
    webhook_secret: str = ""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Delivery attempts for one e-mail or webhook call before it is marked failed.
    delivery_attempts: int = Field(default=6, ge=1, le=50)
    # How often `vigil alerts dispatch --loop` runs escalation and delivery.
    dispatch_interval_seconds: float = Field(default=2.0, ge=0.2, le=300)

    @model_validator(mode="after")
    def _order(self) -> AlertsConfig:
        if self.board_after_minutes <= self.security_head_after_minutes:
            raise ValueError("board_after_minutes must be greater than security_head_after_minutes")
        for url in self.webhook_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook url must start with http:// or https://: {url!r}")
        if self.site_url and not self.site_url.startswith(("http://", "https://")):
            raise ValueError("site_url must start with http:// or https://")
        return self


class EmailConfig(_Section):
    # Empty host: alerts are not e-mailed (the UI and webhooks still get them).
    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    username: str = ""
    password: str = ""
    # "starttls" (port 587), "tls" (implicit TLS, port 465) or "none".
    security: Literal["none", "starttls", "tls"] = "none"
    from_address: str = "vigil@localhost"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class LiveConfig(_Section):
    """The security desk's live wall and playback (vigil.live)."""

    # Long-running live transcodes (ffmpeg, H.265 -> H.264) at once; 0 disables them.
    # Each costs about 12 % of a core for a 1080p camera at 10 fps (docs/benchmarks.md).
    max_transcodes: int = Field(default=2, ge=0, le=32)
    # Recorded H.265 segments transcoded for playback at once.
    max_playback_transcodes: int = Field(default=2, ge=0, le=32)
    # H.265 streams on the wall: "transcode" (falling back to the H.264 sub-stream when
    # the cap is reached) or "substream" (never transcode live; use the sub-stream).
    h265_live: Literal["transcode", "substream"] = "transcode"
    # Size of transcoded pictures: height in pixels (width follows the aspect ratio).
    transcode_height: int = Field(default=720, ge=144, le=2160)
    # Frame-rate cap of transcoded live streams (frames are dropped evenly above it).
    transcode_max_fps: float = Field(default=12.5, ge=1, le=60)
    # Transcoded playback segments kept on disk (data dir cache/live), in MB.
    transcode_cache_mb: int = Field(default=512, ge=16, le=1024 * 1024)
    # A camera's relay keeps its RTSP connection this long after the last viewer left.
    linger_seconds: float = Field(default=10.0, ge=0, le=600)
    # Long live streams re-check the viewer's permission and session this often.
    recheck_seconds: float = Field(default=30.0, ge=1, le=600)
    # Lifetime of a media token (a fresh one is fetched through the API before expiry).
    token_seconds: int = Field(default=120, ge=10, le=3600)


class Config(_Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    security: SecurityConfig = SecurityConfig()
    site: SiteConfig = SiteConfig()
    access: AccessConfig = AccessConfig()
    recording: RecordingConfig = RecordingConfig()
    retention: RetentionConfig = RetentionConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    alerts: AlertsConfig = AlertsConfig()
    email: EmailConfig = EmailConfig()
    live: LiveConfig = LiveConfig()


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/vigil")
    return Path.home() / ".local" / "share" / "vigil"


def data_dir() -> Path:
    raw = os.environ.get("VIGIL_DATA_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else default_data_dir()


def _describe_error(path: Path, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            problems.append(f"'{where}': {err['msg']}")
    return f"{path}: " + "; ".join(problems)


def load_config(path: Path) -> Config:
    """Read and validate a config file; a missing file means all defaults."""
    if not path.exists():
        return Config()
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_error(path, exc)) from exc


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @property
    def database(self) -> Path:
        return self.root / "vigil.sqlite3"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def ensure(self) -> None:
        for p in (self.root, self.keys, self.audit, self.exports, self.logs, self.run):
            p.mkdir(parents=True, exist_ok=True)
        self.keys.chmod(0o700)


@lru_cache(maxsize=1)
def paths() -> Paths:
    return Paths(data_dir())


def read_or_create_secret(path: Path, nbytes: int = 48) -> str:
    """A random secret kept in a private file, created on first use."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text(encoding="ascii").strip()
    try:
        os.write(fd, value.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return value
