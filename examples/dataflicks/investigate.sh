#!/usr/bin/env bash
# The Dataflicks workflow, end to end, with the cairn CLI (README.md beside this file tells the
# story step by step): train a pricing model on a Delta table, let a bad load break the
# scheduled retrain, trace the regression to the data commit, fix the data, reproduce the run on
# the corrected version, promote the new model and serve it.
#
#   CAIRN_TRACKING_URI=http://127.0.0.1:5000 bash examples/dataflicks/investigate.sh [DATA_DIR]
#
# DATA_DIR (default ./dataflicks-data) receives the Delta tables. `cairn`, `python` and `curl`
# come from PATH. Every step prints the command it runs; versions and run ids are read back
# from Cairn (--json), never assumed, so the script can run again on the same store.
set -euo pipefail
[[ -t 1 ]] || export COLUMNS="${COLUMNS:-200}" # tables printed whole into logs, not cut at 80

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "${1:-dataflicks-data}"
data="$(cd "${1:-dataflicks-data}" && pwd -P)"
listings="$data/listings"
holdout="$data/holdout"
experiment="${DATAFLICKS_EXPERIMENT:-dataflicks}"
model="${DATAFLICKS_MODEL:-dataflicks-pricing}"
bad_batch="partner-feed"

step() { printf '\n==> %s\n' "$*"; }
# show COMMAND...: print the command (arguments with spaces or quotes in double quotes), run it.
show() {
    local arg line="$"
    for arg in "$@"; do
        [[ "$arg" =~ ^[][A-Za-z0-9_./:=@,+-]+$ ]] && line+=" $arg" || line+=" \"$arg\""
    done
    printf '%s\n' "$line"
    "$@"
}
# json EXPR: evaluate the Python expression EXPR over the JSON document on stdin (bound to d).
json() { python -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
newest_run() {
    cairn runs search -e "$experiment" -n 1 -o "attributes.start_time DESC" --json \
        | json 'd["runs"][0]["info"]["run_id"]'
}
# The listings version run $1 read, from the inputs it recorded (what `cairn lineage` shows).
version_read() {
    cairn runs show "$1" --json | json "[i['tags']['cairn.data.version']
        for i in d['inputs']['dataset_inputs']
        if i['tags'].get('cairn.data.role') == 'input' and i['dataset']['name'] == 'listings'][0]"
}
project() { show cairn run "$here" --experiment-name "$experiment" --env-manager local "$@"; }
train_runs() {
    show cairn runs search -e "$experiment" -f "tags.mlflow.project.entryPoint = 'train'" \
        -o "attributes.start_time ASC"
}

step "1. Generate the listings table (version 0, normalized features) and a held-out set"
project -e generate -P listings="$listings" -P holdout="$holdout"

step "2. Train and register; with no champion yet, this version becomes the champion"
project -e train -P table="$listings" -P holdout="$holdout" --run-name train
first="$(newest_run)"

step "3. A later load appends a partner feed in raw units: a new table version"
project -e load_bad -P table="$listings" -P batch="$bad_batch"

step "4. The scheduled retrain reads the new version"
project -e train -P table="$listings" -P holdout="$holdout" --run-name scheduled-retrain
retrain="$(newest_run)"

step "5. Compare the runs: same code and parameters, the error jumped"
train_runs

step "6. Their lineage: which table versions each run read"
show cairn lineage "$first"
show cairn lineage "$retrain"
v_old="$(version_read "$first")"
v_new="$(version_read "$retrain")"
echo "run $first read listings version $v_old; run $retrain read version $v_new"

step "7. What changed in the table between those versions, and which commit did it"
show cairn data history "$listings"
show cairn data diff "$listings" "$v_old" "$v_new"

step "8. Write a corrected version: the $bad_batch rows normalized"
project -e fix -P table="$listings" -P batch="$bad_batch" --run-name fix-$bad_batch
v_fix="$(cairn data history "$listings" --limit 1 --json | json 'd["commits"][0]["version"]')"
show cairn data diff "$listings" "$v_old" "$v_fix"

step "9. Reproduce the scheduled retrain on the corrected version $v_fix"
show cairn runs reproduce "$retrain" --data-version "$listings=$v_fix" --env-manager local \
    --run-name retrain-on-fixed-data
fixed="$(newest_run)"
train_runs

step "10. Move the champion alias to the model the reproduced run registered"
new_version="$(cairn models versions "$model" --json \
    | json "[v['version'] for v in d['model_versions'] if v['run_id'] == '$fixed'][0]")"
show cairn models alias "$model" champion "$new_version"
show cairn lineage "models:/$model@champion"

step "11. Serve the champion and price a listing"
serve_log="$(mktemp)"
echo "\$ cairn models serve -m models:/$model@champion --port 0 &"
cairn models serve -m "models:/$model@champion" --port 0 >"$serve_log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; rm -f "$serve_log"' EXIT
url=""
for _ in $(seq 1200); do # up to 2 minutes: the banner names the port, /ping says it is ready
    url="$(grep -o 'http://[0-9.]*:[0-9]*' "$serve_log" | head -n 1 || true)"
    if [[ -n "$url" ]] && curl -sf "$url/ping" >/dev/null; then
        break
    fi
    url=""
    kill -0 "$serve_pid" 2>/dev/null || { cat "$serve_log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "the scoring server did not answer /ping within 2 minutes" >&2; exit 1; }
cat "$serve_log"
# 2 rooms, 65 m², 1.5 km from the centre, rated 4.7, built 12 years ago, z-scored as the table is.
request='{"dataframe_split": {"columns": ["rooms", "area_m2", "distance_km", "rating", "age_years"],
  "data": [[-0.7143, -0.4643, -0.5172, 1.0, -1.2174]]}}'
printf '$ curl -X POST %s/invocations -d %s\n' "$url" "'$request'"
curl -sf -X POST "$url/invocations" -H 'Content-Type: application/json' -d "$request"
echo
