#!/usr/bin/env bash
# Install Cairn into .venv and run the main job on the embedded default store (.cairn/ here):
# the quickstart training sweep, then the run table for its experiment.
#
#   bash scripts/demo.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv=".venv"
python="$venv/bin/python"

log() { printf '==> %s\n' "$*"; }

if [[ ! -x "$python" ]]; then
    log "creating $venv"
    python3 -m venv "$venv"
fi
if [[ ! -x "$venv/bin/uv" ]]; then
    log "installing uv into $venv"
    "$python" -m pip install --quiet uv
fi
log "installing cairn-ml[examples] (editable)"
"$venv/bin/uv" pip install --quiet --python "$python" -e '.[examples]'

log "training: examples/quickstart/train.py"
"$python" examples/quickstart/train.py --experiment quickstart

log "cairn runs list -e quickstart"
"$venv/bin/cairn" runs list -e quickstart
