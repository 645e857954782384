"""Fixtures for the end-to-end tests: Matrix bots and member clients on the session's Synapse, and copbot
on the tests' Discord server (defined beside the Discord tests, shared with the meetings tests)."""

from tests.e2e.matrix_support import bots, members  # noqa: F401  (fixtures)
from tests.e2e.test_discord import copbot_errors, discord_bot  # noqa: F401  (fixtures)
