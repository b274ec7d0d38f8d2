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
