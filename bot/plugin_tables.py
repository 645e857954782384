"""Import every bundled plugin's ``models`` module so their tables join the shared metadata.

Alembic's autogenerate and the test fixtures that create schemas need every table known up front.
"""

from __future__ import annotations

import importlib
import pkgutil

import plugins


def import_plugin_tables() -> None:
    for info in pkgutil.iter_modules(plugins.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"plugins.{info.name}.models")
            except ModuleNotFoundError as error:
                if error.name != f"plugins.{info.name}.models":
                    raise
