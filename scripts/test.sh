#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs: a virtualenv with the project and its test extra,
# and Debian's chromium for the browser tests (when run as root on a Debian-like machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "warning: could not install chromium; the browser tests will fail" >&2
fi
exec .venv/bin/python -m pytest "$@"
