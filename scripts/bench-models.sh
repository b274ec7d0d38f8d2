#!/usr/bin/env bash
# Benchmark Cairn's model scoring against MLflow's (see bench/models.py).
#
#   bash scripts/bench-models.sh                       # serve, predict and spark, full sizes
#   bash scripts/bench-models.sh --quick --only serve  # one part, shorter runs
#
# Creates .venv if missing and installs the package editable with its 'bench' extra via
# scripts/_venv.sh, then runs bench/models.py with the arguments given here.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn bench

log "running bench/models.py $*"
exec "$python" bench/models.py "$@"
