#!/usr/bin/env bash
# Install Cairn into .venv and run the main job: start the tracking server on the embedded
# default store (.cairn/ here), run the Dataflicks workflow against it over the REST API
# (examples/dataflicks/investigate.sh: train, a bad data load, trace, fix, reproduce, promote,
# serve; its Delta tables go to .cairn/tables/), then keep serving until Ctrl-C.
#
#   bash scripts/demo.sh            # serve on http://127.0.0.1:5000 afterwards ($CAIRN_PORT)
#   bash scripts/demo.sh --once     # stop the server when the workflow is done
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn examples
build_ui

port="${CAIRN_PORT:-5000}"
url="http://127.0.0.1:$port"
log "starting the tracking server on the default store (.cairn/)"
"$venv/bin/cairn" server --host 127.0.0.1 --port "$port" --backend-store-uri .cairn &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT

"$python" - "$url" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "/health", timeout=1).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the tracking server did not answer /health within 30 s")
        time.sleep(0.1)
PY

export CAIRN_TRACKING_URI="$url"
log "the Dataflicks workflow against $url: examples/dataflicks/investigate.sh"
PATH="$PWD/$venv/bin:$PATH" bash examples/dataflicks/investigate.sh .cairn/tables

if [[ "${1:-}" == "--once" ]]; then
    exit 0
fi
log "tracking server and web UI at $url (MLFLOW_TRACKING_URI=$url works too): the runs are in experiment dataflicks; Ctrl-C to stop"
wait "$server_pid"
