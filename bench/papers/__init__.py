"""One file per paper: what `make reproduce-<paper>` runs, what the report draws, and what the paper claims.

    python -m bench.papers list                     # the papers, in order (the Makefile reads it)
    python -m bench.papers experiments mora small   # the experiments of a tier, one per line (the Makefile reads it)
    python -m bench.papers check                    # every spec names existing experiments, figures and tiers

A spec is a module here with a ``SPEC`` (bench/papers/spec.py says what it holds); the papers are found, not listed:
every module of this package with a ``SPEC`` is one, ordered by its ``order``, and ``register`` adds one from
elsewhere (a test's fixture). Experiments are conf/experiment/<name>.yaml (the published setting, scale=paper) and
conf/experiment/<name>_<tier>.yaml (the CPU tiers: ``tiny`` is the one-minute smoke, ``small`` the tier sized to
resolve the claims). Tables come from bench/published/<paper>_table*.csv; a run feeds the tables its experiment
file lists under ``report.tables``. The comparison (compare.py) is a spec of another kind, found the same way.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from ..errors import UserError

_registered: dict[str, Any] = {}


@cache
def _discovered() -> tuple[Any, ...]:
    """Every module of this package with a ``SPEC``, imported on first use (not at import: the specs import the
    report's building blocks, which must never need this registry)."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_") or module.name in ("spec", "registry"):
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SPEC", None)
        if spec is not None:
            found.append(spec)
    return tuple(found)


def specs(kind: str | None = None) -> tuple[Any, ...]:
    """The specs of a kind ("paper", "comparison"; None: all), in order."""
    every = sorted((*_discovered(), *_registered.values()), key=lambda spec: spec.order)
    return tuple(spec for spec in every if kind is None or spec.kind == kind)


def names(kind: str | None = "paper") -> tuple[str, ...]:
    return tuple(spec.name for spec in specs(kind))


def load(name: str, kind: str | None = "paper") -> Any:
    for spec in specs(kind):
        if spec.name == name:
            return spec
    raise UserError(f"{kind or 'spec'}={name!r}; valid: {', '.join(names(kind))}")


def register(spec: Any) -> None:
    """Add a spec that lives outside this package (a fixture); its name and order must be new."""
    taken = {s.name: s.order for s in specs()}
    if spec.name in taken or spec.order in taken.values():
        raise UserError(f"spec {spec.name!r} (order {spec.order}): that name or order is taken; taken: {taken}")
    _registered[spec.name] = spec


def unregister(name: str) -> None:
    _registered.pop(name, None)


def validate(spec: Any) -> None:
    """One line naming the first thing a spec names that does not exist."""
    spec.validate()


def __getattr__(attribute: str) -> Any:
    if attribute == "PAPERS":   # the papers' names in order, found when asked (a registered fixture included)
        return names("paper")
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
