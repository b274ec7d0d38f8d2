#!/usr/bin/env bash
# Benchmark Cairn's tracking server against `mlflow server` over HTTP (see bench/server.py).
#
#   bash scripts/bench-server.sh                          # every scenario, full sizes
#   bash scripts/bench-server.sh --quick                  # smaller sizes, fewer repeats
#   bash scripts/bench-server.sh --only search --json bench-server.json
#
# Needs python3 (>= 3.11). Creates .venv if missing and installs the package editable with its
# 'bench' extra (MLflow, and Cairn's server stack through 'examples') via scripts/_venv.sh, as
# scripts/bench.sh does; then runs bench/server.py with the arguments given here.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn bench

log "running bench/server.py $*"
exec "$python" bench/server.py "$@"
