"""Settings for the test suite: a private data directory per test process, and
PostgreSQL instead of SQLite when VIGIL_TEST_DB=postgres."""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit

os.environ["VIGIL_DATA_DIR"] = tempfile.mkdtemp(prefix="vigil-test-")
os.environ.pop("VIGIL_DATABASE_URL", None)

from vigil.settings import *  # noqa: F403
from vigil.settings import DATABASES, PATHS

VIGIL_AUDIT_ANCHOR = PATHS.audit / "anchor.log"

if os.environ.get("VIGIL_TEST_DB") == "postgres":
    url = urlsplit(
        os.environ.get(
            "VIGIL_TEST_POSTGRES_URL", "postgresql://vigil:vigil@127.0.0.1:5432/vigil_test"
        )
    )
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/") or "vigil_test",
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "",
        "PORT": str(url.port or ""),
        "TEST": {
            "NAME": (url.path.lstrip("/") or "vigil_test")
            + "_"
            + os.environ.get("PYTEST_XDIST_WORKER", "main")
        },
    }
