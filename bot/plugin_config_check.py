"""Checks the ``[plugins.<name>]`` tables against each plugin's own Config, for check-config and ``run``.

It lives apart from :mod:`bot.config` because finding the plugins means importing them, and they import
the core: the config must stay at the bottom of the import graph (registry → config, never back).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.activity import recorded_kinds
from bot.config import (
    Check,
    Findings,
    Loaded,
    RawConfig,
    community_slugs,
    read_settings,
    validate_as_written,
)
from bot.config_problems import describe, did_you_mean
from bot.config_values import validation_context
from bot.plugin import Plugin
from bot.registry import discover_plugins


def check_plugin_tables(raw: RawConfig, available: Mapping[str, type[Plugin]] | None = None) -> Findings:
    """Problems and warnings of every plugin table; tables that are not tables are pydantic's to report."""
    findings = Findings()
    tables = raw.data.get("plugins")
    if not isinstance(tables, dict) or not tables:
        return findings
    if available is None:
        try:
            available = discover_plugins()
        except Exception as error:  # a broken third-party plugin: say which, do not crash check-config
            findings.problems.append(f"plugins: a plugin could not be loaded ({error})")
            return findings
    for name, table in tables.items():
        _check_table(raw, name, table, available, findings)
    return findings


def _check_table(
    raw: RawConfig, name: str, table: Any, available: Mapping[str, type[Plugin]], findings: Findings
) -> None:
    cls = available.get(name)
    if cls is None:
        known = ", ".join(sorted(available)) or "none"
        hint = did_you_mean(name, available)
        findings.problems.append(f"{raw.label(('plugins', name))}: no such plugin{hint} (available: {known})")
        return
    if not isinstance(table, dict):
        return
    context = validation_context(community_slugs(raw.data))
    context["activity_kinds"] = recorded_kinds(available.values())
    prefix = ("plugins", name)
    _, errors = validate_as_written(cls.Config, table, raw, prefix, context)
    findings.problems += [describe(item, model=cls.Config, prefix=prefix, label=raw.label) for item in errors]
    findings.warnings += [f"plugins.{name}.{warning}" for warning in context["warnings"]]


CHECKS: tuple[Check, ...] = (check_plugin_tables,)
"""What check-config and ``copbot run`` check beyond the settings themselves."""


def load_checked(path: str | Path | None) -> Loaded:
    """The settings with every plugin table checked too: what check-config and run both use."""
    return read_settings(path, checks=CHECKS)
