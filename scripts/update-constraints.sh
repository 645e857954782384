#!/usr/bin/env bash
# Writes constraints.txt: every package a fresh install of copbot (with its test extras) resolves today, at
# the version resolved. `make` installs through it, so a new machine gets the set `make test` passed with,
# not whatever was released since. Run it (`make constraints`) to move to newer releases, then `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-$(bash scripts/pick-python.sh)}"
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
{
    echo "# The versions copbot is tested with (scripts/update-constraints.sh wrote them; \`make constraints\`)."
    echo "# pyproject.toml says what copbot needs; this says what a fresh install gets: make and the image"
    echo "# install through it (pip -c), so a new machine runs the set \`make test\` passed with."
    "$venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check
} > constraints.txt
echo "update-constraints: $(grep -vc '^#' constraints.txt) packages pinned in constraints.txt" >&2
