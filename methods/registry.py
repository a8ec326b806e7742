"""The methods the suite knows, by name: the built-ins (registered by ``methods/__init__.py``) and any a plugin adds.

A method from outside this repository needs no edit to it: its module defines an :class:`AdapterMethod` subclass
with a ``name`` and registers it (``@register``), and naming the module in ``LORABENCH_PLUGINS`` (comma-separated
module names, importable from ``sys.path``, e.g. through ``PYTHONPATH``) makes every process that imports
``methods`` import it as well, so the name resolves wherever the built-ins' do: ``python -m bench.train``,
``bench.export``, ``bench.perf``, the pre-flight checks. Its method YAML sits in a directory Hydra searches
(``hydra.searchpath=[file:///that/dir]`` holding ``method/<name>.yaml``), which adds it to the ``method`` group.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import AdapterMethod

PLUGINS_ENV = "LORABENCH_PLUGINS"

METHODS: dict[str, type[AdapterMethod]] = {}


def register(cls: type[AdapterMethod]) -> type[AdapterMethod]:
    """Add an AdapterMethod subclass under its ``name`` (usable as a class decorator). A name another class holds is
    refused, so a plugin never silently replaces a method whose records already exist."""
    from .base import AdapterMethod

    name = getattr(cls, "name", "")
    if not (isinstance(cls, type) and issubclass(cls, AdapterMethod)) or not isinstance(name, str) or not name:
        raise ValueError(f"method: cannot register {cls!r}; valid: an AdapterMethod subclass with a name")
    taken = METHODS.get(name)
    if taken is not None and taken is not cls:
        raise ValueError(f"method: name={name!r} is taken by {taken.__module__}.{taken.__qualname__}")
    METHODS[name] = cls
    return cls


def load_plugins(modules: str | None = None) -> list[str]:
    """Import the modules ``modules`` names (default: the ``LORABENCH_PLUGINS`` environment variable); returns them."""
    names = [m.strip() for m in (os.environ.get(PLUGINS_ENV, "") if modules is None else modules).split(",")]
    names = [m for m in names if m]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(f"{PLUGINS_ENV}: cannot import {name!r} ({err}); valid: module names on sys.path") from err
    return names
