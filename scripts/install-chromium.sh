#!/usr/bin/env bash
# Make a headless Chromium available for the dashboard's browser test (tests/e2e/test_dashboard_browser.py).
#
# Debian's `chromium` package; nothing runs in the background afterwards (the test starts the browser
# itself for each page). Idempotent, and it never fails the build: without root or apt-get, or if apt
# fails, it says so and the browser test is skipped with a visible reason (.ci/run makes that a failure
# only when Chromium is installed, through COPBOT_TEST_CHROMIUM_REQUIRED).
set -uo pipefail

log() { echo "install-chromium: $*"; }

find_chromium() {
    local name
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if browser=$(find_chromium); then
    log "Chromium already present: $browser; nothing to do"
    exit 0
fi

if [ "${EUID:-$(id -u)}" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "Chromium is not installed and this is not root with apt-get;" \
        "the browser test will be skipped (install the 'chromium' package)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "installing Debian's chromium package"
if ! timeout 600 apt-get update -qq; then
    log "WARNING: apt-get update failed; the browser test will be skipped"
    exit 0
fi
# fonts-dejavu-core: text in the screenshots (the browser alone may come without any font)
if ! timeout 900 apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; then
    log "WARNING: apt-get install chromium failed; the browser test will be skipped"
    exit 0
fi

if browser=$(find_chromium); then
    log "installed: $browser"
else
    log "WARNING: chromium installed but not found on PATH; the browser test will be skipped"
fi
exit 0
