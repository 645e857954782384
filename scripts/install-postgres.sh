#!/usr/bin/env bash
# Make PostgreSQL server binaries available for the storage tests (tests/harness/postgres.py).
#
# The tests start their own throwaway cluster, so all we need are initdb, pg_ctl and postgres; the
# distribution's default cluster must not be left running (it would hold port 5432 and memory for
# nothing). Idempotent, and it never fails the build: without root or apt-get, or if apt fails,
# it says so and the PostgreSQL tests are skipped with a visible reason.
set -uo pipefail

log() { echo "install-postgres: $*"; }

# Print the first directory holding the server binaries (COPBOT_PG_BINDIR, then Debian's layout).
find_server_bindir() {
    local dir
    for dir in ${COPBOT_PG_BINDIR:+"$COPBOT_PG_BINDIR"} /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Stop every running cluster managed by Debian's postgresql-common (normally just 15/main).
stop_distro_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    local version name _port status _rest
    while read -r version name _port status _rest; do
        case "$status" in
            online*)
                log "stopping the distribution's default cluster $version/$name (tests use their own)"
                timeout 60 pg_ctlcluster "$version" "$name" stop -m fast \
                    || log "WARNING: could not stop cluster $version/$name"
                ;;
        esac
    done < <(pg_lsclusters --no-header 2>/dev/null)
}

if bindir=$(find_server_bindir); then
    log "PostgreSQL server binaries already present in $bindir ($("$bindir/postgres" --version 2>/dev/null)); nothing to do"
    exit 0
fi

if [ "${EUID:-$(id -u)}" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL is not installed and this is not root with apt-get;" \
        "the PostgreSQL tests will be skipped (install the 'postgresql' package or set COPBOT_PG_BINDIR)"
    exit 0
fi

# Keep the package from starting its default cluster: invoke-rc.d (also used under systemd)
# consults policy-rc.d, and 101 means "action forbidden". Only add one if none exists, e.g.
# Docker images already ship one, and remove ours afterwards whatever happens.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from copbot scripts/install-postgres.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
log "installing Debian's postgresql package"
if ! timeout 600 apt-get update -qq; then
    log "WARNING: apt-get update failed; the PostgreSQL tests will be skipped"
    exit 0
fi
if ! timeout 900 apt-get install -y -qq --no-install-recommends postgresql; then
    log "WARNING: apt-get install postgresql failed; the PostgreSQL tests will be skipped"
    exit 0
fi

# Belt and braces for a pre-existing policy-rc.d that allows starts.
stop_distro_clusters

if bindir=$(find_server_bindir); then
    log "installed: $bindir ($("$bindir/postgres" --version 2>/dev/null))"
else
    log "WARNING: postgresql installed but no server binaries under /usr/lib/postgresql/*/bin;" \
        "the PostgreSQL tests will be skipped"
fi
exit 0
