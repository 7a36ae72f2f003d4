#!/usr/bin/env bash
# `make test`: lint, unit tests, then the lab tests and the suite's acceptance run against a
# freshly started lab fleet, which is always taken down again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1

echo "== lint (ruff, mypy --strict, import layers)"
make --no-print-directory lint

echo "== unit tests"
$PY -m pytest -q -p no:cacheprovider tests -m "not lab" -n 2

echo "== lab tests (lab up, suite against it, lab down)"
trap '$PY -m lab down >/dev/null 2>&1 || true' EXIT
$PY -m lab up
$PY -m pytest -q -p no:cacheprovider tests -m lab

echo "== lab lifecycle (down and up are idempotent and leave nothing behind)"
LAB_LIFECYCLE=1 $PY -m pytest -q -p no:cacheprovider tests/lab/test_lifecycle.py
