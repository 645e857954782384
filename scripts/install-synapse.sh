#!/usr/bin/env bash
# Install a Synapse homeserver into its own virtual environment (.venv-synapse at the repo root) for the
# Matrix end-to-end tests. It lives apart from .venv so that Synapse's many pins never fight copbot's
# dependencies. Idempotent: a marker file records the installed spec, so a second run is a no-op (~0.5 s).
#
# Environment overrides:
#   SYNAPSE_VENV  target venv (default: <repo>/.venv-synapse)
#   SYNAPSE_SPEC  pip requirement (default below; 1.163.x is the series measured on Python 3.11)
#   PYTHON        interpreter used to create the venv (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SYNAPSE_VENV:-$repo_root/.venv-synapse}"
spec="${SYNAPSE_SPEC:-matrix-synapse>=1.163,<1.164}"
python="${PYTHON:-python3}"
marker="$venv/.copbot-synapse-installed"

installed_version() {
    "$venv/bin/python" -c 'from importlib.metadata import version; print(version("matrix-synapse"))'
}

# Fast path: marker matches the wanted spec and the package still imports.
if [[ -f "$marker" && "$(cat "$marker")" == "$spec" && -x "$venv/bin/python" ]] \
    && "$venv/bin/python" -c 'import synapse' >/dev/null 2>&1; then
    echo "install-synapse: already installed ($(installed_version)) in $venv"
    exit 0
fi

start=$SECONDS
log="$(mktemp "${TMPDIR:-/tmp}/install-synapse.XXXXXX.log")"
trap 'rm -f "$log"' EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >"$log" 2>&1 || { cat "$log" >&2; echo "install-synapse: venv creation failed" >&2; exit 1; }
fi
# Quiet on success; on failure show pip's output so `make test` explains itself.
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-synapse: pip install '$spec' failed" >&2
    exit 1
fi
printf '%s' "$spec" >"$marker"
version="$(installed_version)"
echo "install-synapse: installed matrix-synapse $version into $venv in $((SECONDS - start)) s"
