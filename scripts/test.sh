#!/usr/bin/env bash
# Install Cairn with its dev extras and run the test suite on a fresh machine.
#
#   bash scripts/test.sh                       # the whole suite
#   bash scripts/test.sh tests/tracking -q     # arguments go straight to pytest
#
# Needs python3 (>= 3.11). Creates .venv, installs uv into it, installs the package
# editable with '.[dev]', builds the web UI (scripts/_venv.sh: build_ui), makes sure
# PostgreSQL's server binaries and Debian's chromium exist (the test session starts its own
# throwaway PostgreSQL server, see tests/conftest.py; Playwright drives chromium), then runs
# pytest.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

source scripts/_venv.sh
install_cairn dev
build_ui

# PostgreSQL server binaries (initdb, pg_ctl) ---------------------------------------------
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

if ! have_postgres && [[ -z "${CAIRN_TEST_POSTGRES_URI:-}" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        log "installing PostgreSQL server (Debian package 'postgresql')"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        have_postgres || { echo "PostgreSQL install did not provide initdb" >&2; exit 1; }
    else
        echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin." >&2
        echo "Install them with:  sudo apt-get install -y postgresql" >&2
        echo "(or set CAIRN_TEST_POSTGRES_URI=postgresql://USER@HOST:PORT/postgres)" >&2
        exit 1
    fi
fi

# Chromium for the browser tests (tests/e2e/test_ui.py: Playwright drives Debian's chromium) --
if [[ ! -x /usr/bin/chromium && "${CAIRN_TEST_SKIP_BROWSER:-}" != "1" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        log "installing Chromium (Debian package 'chromium')"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium >/dev/null
        [[ -x /usr/bin/chromium ]] || { echo "Chromium install did not provide /usr/bin/chromium" >&2; exit 1; }
    else
        echo "Chromium not found at /usr/bin/chromium (the browser tests need it)." >&2
        echo "Install it with:  sudo apt-get install -y chromium" >&2
        echo "(or set CAIRN_TEST_SKIP_BROWSER=1 to skip the browser tests)" >&2
        exit 1
    fi
fi

# Tests ---------------------------------------------------------------------------------
log "running pytest $*"
status=0
"$python" -m pytest "$@" || status=$?

if [[ "$status" -eq 5 ]]; then
    echo "pytest collected no tests (exit 5): treating that as a failure" >&2
fi
exit "$status"
