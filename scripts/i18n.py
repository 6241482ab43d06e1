#!/usr/bin/env python3
"""Update and compile the Vietnamese catalogs, one per app (vigil/<app>/locale/vi).

    scripts/i18n.py            extract new strings (makemessages) and compile .mo files
    scripts/i18n.py --check    fail if any string lacks a Vietnamese translation
                               or a compiled catalog is out of date

Per-app catalogs keep translations next to the code that uses them. Compilation uses
polib, so GNU msgfmt is not needed; extraction needs GNU gettext's xgettext.
"""

from __future__ import annotations

import argparse
import gettext
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(p.parent for p in (ROOT / "vigil").glob("*/apps.py"))


def catalog(app: Path) -> Path:
    return app / "locale" / "vi" / "LC_MESSAGES" / "django.po"


def extract(app: Path) -> None:
    (app / "locale").mkdir(exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vigil.settings", "PYTHONPATH": str(ROOT)}
    env.setdefault("VIGIL_DATA_DIR", tempfile.mkdtemp(prefix="vigil-i18n-"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemessages",
            "-l",
            "vi",
            "--no-obsolete",
            "--no-location",
        ],
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
    )


def compile_mo(po_path: Path) -> None:
    po = polib.pofile(str(po_path))
    po.save_as_mofile(str(po_path.with_suffix(".mo")))


def problems(po_path: Path) -> list[str]:
    out = []
    po = polib.pofile(str(po_path))
    for entry in po:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            out.append(f"{po_path}: fuzzy: {entry.msgid!r}")
        elif entry.msgid_plural:
            if not all(entry.msgstr_plural.values()):
                out.append(f"{po_path}: untranslated: {entry.msgid!r}")
        elif not entry.msgstr:
            out.append(f"{po_path}: untranslated: {entry.msgid!r}")
    mo_path = po_path.with_suffix(".mo")
    if not mo_path.exists():
        out.append(f"{mo_path}: missing (run scripts/i18n.py)")
    else:
        with mo_path.open("rb") as fh:
            compiled = gettext.GNUTranslations(fh)
        for entry in po:
            if entry.obsolete or entry.msgid_plural or not entry.msgstr or "fuzzy" in entry.flags:
                continue
            key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
            if compiled._catalog.get(key) != entry.msgstr:  # type: ignore[attr-defined]
                out.append(f"{mo_path}: out of date for {entry.msgid!r} (run scripts/i18n.py)")
                break
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    found: list[str] = []
    for app in APPS:
        po = catalog(app)
        if not args.check:
            extract(app)
            if po.exists():
                compile_mo(po)
        if po.exists():
            found += problems(po)
    for line in found:
        print(line)
    if args.check and found:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
