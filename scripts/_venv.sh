# Sourced by the scripts here: make .venv with uv in it and install the given extras (editable).
#   install_cairn dev        -> pip install -e '.[dev]'
# Sets $python to the venv's interpreter.

venv=".venv"
python="$venv/bin/python"

log() { printf '==> %s\n' "$*"; }

install_cairn() {
    local extras="$1"
    if [[ ! -x "$python" ]]; then
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    if [[ ! -x "$venv/bin/uv" ]]; then
        log "installing uv into $venv"
        "$python" -m pip install --quiet uv
    fi
    log "installing cairn-ml[$extras] (editable)"
    "$venv/bin/uv" pip install --quiet --python "$python" -e ".[$extras]"
}

# Build the web UI (ui/ -> src/cairn/server/static) with npm, unless its sources are unchanged
# since the last build: a hash of every file under ui/ (but node_modules) is kept in a stamp.
ui_static="src/cairn/server/static"

ui_sources_hash() {
    find ui -path ui/node_modules -prune -o -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

build_ui() {
    local stamp="$ui_static/.build-stamp" hash
    hash="$(ui_sources_hash)"
    if [[ -f "$ui_static/index.html" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
        log "web UI up to date ($ui_static)"
        return
    fi
    if ! command -v npm >/dev/null; then
        echo "npm not found: install Node.js 20+ to build the web UI (ui/)" >&2
        return 1
    fi
    # npm ci wipes node_modules: only when the lockfile changed since it last ran.
    local lock_stamp="ui/node_modules/.cairn-lock-hash" lock_hash
    lock_hash="$(sha256sum ui/package-lock.json | cut -d' ' -f1)"
    if [[ ! -f "$lock_stamp" || "$(cat "$lock_stamp")" != "$lock_hash" ]]; then
        log "installing the web UI's packages (npm ci)"
        (cd ui && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$lock_hash" >"$lock_stamp"
    fi
    log "building the web UI (tsc --noEmit && vite build -> $ui_static)"
    (cd ui && npm run --silent build)
    echo "$hash" >"$stamp"
}
