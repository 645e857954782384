"""Fixtures for the end-to-end tests: Matrix bots and member clients on the session's Synapse."""

from tests.e2e.matrix_support import bots, members  # noqa: F401  (fixtures)
