#!/usr/bin/env bash
# Vigil bootstrap: installs what is needed (idempotently) and runs the demo or the tests.
#
#   ./run.sh demo [vigil demo options]   install, then start the demo school on http://127.0.0.1:8000
#   ./run.sh test [pytest options]       install, then run lint, type checks and the whole test suite
#   ./run.sh install                     install only
#
# Works on a fresh Debian 12 machine as root (or as a user with sudo).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

DEBIAN_PACKAGES=(
  python3 python3-venv python3-dev build-essential
  ffmpeg
  python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  fonts-dejavu-core gettext
)
TEST_PACKAGES=(chromium postgresql)

log() { printf '\033[1;34m[vigil]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

venv_install() {
  local extras="$1"
  if [ ! -x "$PY" ]; then
    log "creating the Python virtual environment in .venv"
    /usr/bin/python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.vigil-installed-$extras"
  local digest
  digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    log "installing Python dependencies ($extras)"
    "$PY" -m pip install -q --upgrade pip
    if [ "$extras" = "dev" ]; then
      "$PY" -m pip install -q -e ".[dev]"
    else
      "$PY" -m pip install -q -e .
    fi
    echo "$digest" >"$stamp"
  fi
}

start_postgres() {
  # A local PostgreSQL cluster for the PostgreSQL half of the suite.
  local ver
  ver="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  as_root pg_ctlcluster "$ver" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    as_root su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
  done
  as_root su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='vigil'\"" | grep -q 1 ||
    as_root su postgres -c "psql -qc \"create role vigil login superuser password 'vigil'\"" >/dev/null
  export VIGIL_TEST_POSTGRES_URL="${VIGIL_TEST_POSTGRES_URL:-postgresql://vigil:vigil@127.0.0.1:5432/vigil_test}"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  install)
    apt_install "${DEBIAN_PACKAGES[@]}"
    venv_install base
    ;;
  demo)
    apt_install "${DEBIAN_PACKAGES[@]}"
    venv_install base
    exec "$VENV/bin/vigil" demo "$@"
    ;;
  test)
    apt_install "${DEBIAN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    venv_install dev
    start_postgres
    exec "$ROOT/scripts/test-suite" "$@"
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
