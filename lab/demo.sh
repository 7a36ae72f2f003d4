#!/usr/bin/env bash
# `make demo`: start the lab fleet, run the suite against it, keep the reports, stop the lab.
# Exits 0 when the reports were written: the lab's faulty hosts are meant to fail checks.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap '$PY -m lab down >/dev/null 2>&1 || true' EXIT

$PY -m lab up || { echo "make demo: the lab did not start (see above)" >&2; exit 1; }
before=$(readlink reports/latest 2>/dev/null || true)
$PY -m pytest tests_infra --ansible-inventory=inventories/lab.yml --hosts=ansible://all \
  -p no:cacheprovider -q --no-header -rN --tb=no
rc=$?
after=$(readlink reports/latest 2>/dev/null || true)
if [ -n "$after" ] && [ "$after" != "$before" ] && [ -s "reports/latest/report.html" ] \
   && [ -s "reports/latest/junit.xml" ]; then
  echo
  echo "reports written to reports/$after/ (reports/latest points there):"
  ls -1 "reports/$after" | sed 's/^/  /'
  $PY -m hrw_preflight verify "reports/$after"
  echo "keep it: tar czf hrw-preflight-$after.tgz -C reports $after"
  echo "pytest exit status $rc (1 is expected: the lab's faulty hosts fail their checks)"
  exit 0
fi
echo "make demo: the suite wrote no reports (pytest exit status $rc)" >&2
exit 1
