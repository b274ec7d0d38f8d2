#!/usr/bin/env bash
# Benchmark Cairn against MLflow (see bench/README.md).
#
#   bash scripts/bench.sh                          # every scenario, full sizes (~9 min on 2 cores)
#   bash scripts/bench.sh --quick                  # smaller sizes, fewer repeats
#   bash scripts/bench.sh --only search --json bench-results.json
#
# Needs python3 (>= 3.11). Creates .venv if missing and installs the package editable with its
# 'bench' extra (MLflow, scikit-learn, matplotlib) through scripts/_venv.sh, as scripts/test.sh
# does with 'dev'; then runs bench/tracking.py with the arguments given here.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn bench

log "running bench/tracking.py $*"
exec "$python" bench/tracking.py "$@"
