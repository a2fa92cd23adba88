#!/bin/bash
# Reproduces reports/baselines (the commands of reports/README.md), timing each step:
#   bash reports/baselines/reproduce.sh 2>&1 | tee run.log
# cold-run.log is the output of the run that produced the committed files from empty caches.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
CG=${CRESTGUARD:-.venv/bin/crestguard}
TIMEFORMAT="=== wall %R s, user %U s, sys %S s"
step() { echo "=== $(date +%T) $* (load: $(cut -d' ' -f1-3 /proc/loadavg))"; time "$@"; }
step $CG eval manifest --check
step $CG eval baseline lr-en
step $CG eval --model lr-en --out reports/baselines/lr-en
step $CG eval baseline lr-all
step $CG eval --model lr-all --out reports/baselines/lr-all
step $CG eval --model flag-all --out reports/baselines/flag-all
step $CG eval compare reports/baselines/lr-en reports/baselines/lr-all --out reports/baselines/compare-lr-en-vs-lr-all.md
echo "=== $(date +%T) all done"
