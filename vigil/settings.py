"""Django settings, derived from the data directory and ``vigil.toml`` (see ``vigil.conf``)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vigil.conf import load_config, paths, read_or_create_secret

BASE_DIR = Path(__file__).resolve().parent
PATHS = paths()
PATHS.ensure()
VIGIL = load_config(PATHS.config_file)

SECRET_KEY = os.environ.get("VIGIL_SECRET_KEY") or read_or_create_secret(
    PATHS.keys / "django-secret"
)
DEBUG = os.environ.get("VIGIL_DEBUG") == "1"
ALLOWED_HOSTS = [*VIGIL.server.allowed_hosts, "testserver"]
CSRF_TRUSTED_ORIGINS = VIGIL.server.csrf_trusted_origins

INSTALLED_APPS = [
    # Vigil's apps come first so their templates and commands take precedence.
    "vigil.core",
    "vigil.accounts",
    "vigil.audit",
    "vigil.authz",
    "vigil.school",
    # Alerts sit under the capability apps that raise them (recording, retention, analytics).
    "vigil.alerts",
    "vigil.recording",
    "vigil.retention",
    "vigil.live",
    "vigil.access",
    "vigil.analytics",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "vigil.core.middleware.SessionExpiryMiddleware",
    "vigil.core.locale_middleware.VigilLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "vigil.core.middleware.TwoFactorRequiredMiddleware",
    "vigil.core.middleware.HtmxLoginRedirectMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "vigil.core.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vigil.urls"
WSGI_APPLICATION = "vigil.wsgi.application"
ASGI_APPLICATION = "vigil.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "vigil.core.context_processors.shell",
            ],
        },
    }
]


def _database() -> dict[str, object]:
    url = os.environ.get("VIGIL_DATABASE_URL") or VIGIL.database.url
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            from vigil.conf import ConfigError

            raise ConfigError(f"database url: unsupported scheme '{parts.scheme}'")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(PATHS.database),
        "OPTIONS": {
            # WAL lets the recorder write while the web app reads; IMMEDIATE takes the
            # write lock at BEGIN so concurrent writers queue instead of failing late.
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=20000;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = ["vigil.accounts.hashers.VigilArgon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions: idle expiry through the cookie age refreshed on every request, absolute
# expiry enforced by vigil.core.middleware.SessionExpiryMiddleware.
SESSION_COOKIE_AGE = VIGIL.security.idle_timeout_minutes * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "vigil_session"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "vigil_csrftoken"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = VIGIL.server.https
VIGIL_ABSOLUTE_SESSION_SECONDS = VIGIL.security.absolute_timeout_hours * 3600
if VIGIL.server.https:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Lock-out (QCVN 135:2024/BTTTT): N failures within the window lock the account for the
# same time; attempts expire so the window slides.
AXES_FAILURE_LIMIT = VIGIL.security.lockout_failures
AXES_COOLOFF_TIME = timedelta(minutes=VIGIL.security.lockout_minutes)
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_LOCKOUT_PARAMETERS = ["username"]
# Per-account lock-out as QCVN 135 asks; not per address, so that guards sharing the
# security desk's computer cannot lock each other out of the 24/7 watch (ADR 0006).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "vigil.accounts.views.locked_out"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False

OTP_TOTP_ISSUER = "Vigil"
OTP_TOTP_THROTTLE_FACTOR = 1
VIGIL_TWO_FACTOR_ROLES = frozenset(VIGIL.security.two_factor_roles)

LANGUAGE_CODE = VIGIL.site.language
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "vigil_language"
TIME_ZONE = VIGIL.site.time_zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = PATHS.root / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Alert e-mail ([email] in vigil.toml): Django's SMTP backend.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = VIGIL.email.host or "localhost"
EMAIL_PORT = VIGIL.email.port
EMAIL_HOST_USER = VIGIL.email.username
EMAIL_HOST_PASSWORD = VIGIL.email.password
EMAIL_USE_TLS = VIGIL.email.security == "starttls"
EMAIL_USE_SSL = VIGIL.email.security == "tls"
EMAIL_TIMEOUT = VIGIL.email.timeout_seconds
DEFAULT_FROM_EMAIL = SERVER_EMAIL = VIGIL.email.from_address

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("VIGIL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
    },
}
