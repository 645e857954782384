"""A throwaway PostgreSQL cluster for the benches that also measure on PostgreSQL (for information)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def postgres_cluster(database: str) -> tuple[Any, str] | str:
    """A throwaway PostgreSQL cluster as the tests start it, with ``database`` in it, or why there is none."""
    try:
        from tests.harness.postgres import (
            PostgresUnavailable,
            ThrowawayCluster,
            _unprivileged_account,
            find_pg_bindir,
        )
    except ImportError as exc:  # the test extras (pytest) are not installed
        return f"the tests' PostgreSQL harness cannot be imported ({exc})"
    try:
        bindir = find_pg_bindir()
        account = _unprivileged_account()
    except PostgresUnavailable as exc:
        return str(exc)
    base = Path(tempfile.mkdtemp(prefix="copbot-bench-pg-"))
    if account is not None:
        os.chown(base, account.pw_uid, account.pw_gid)
    cluster = ThrowawayCluster(bindir, base, account)
    try:
        server = cluster.start()
    except Exception as exc:
        cluster.stop()
        return f"the cluster did not start: {exc}"
    return cluster, server.url_for(server.create_database(database))
