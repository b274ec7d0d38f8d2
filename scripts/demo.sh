#!/usr/bin/env bash
# Install Cairn into .venv and run the main job on the embedded default store (.cairn/ here):
# the quickstart training sweep, then the run table for its experiment.
#
#   bash scripts/demo.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn examples

log "training: examples/quickstart/train.py"
"$python" examples/quickstart/train.py --experiment quickstart

log "cairn runs list -e quickstart"
"$venv/bin/cairn" runs list -e quickstart
