#!/usr/bin/env bash
# Runs the gateway with the defaults: SQLite under ./var, simulator and dashboard on, no provider accounts.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/lapor serve "$@"
