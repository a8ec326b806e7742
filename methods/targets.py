"""Which modules a ``target_modules`` setting names: peft's rule, shared by the methods and their cost model."""

from __future__ import annotations

import re
from typing import Sequence


def module_matches(name: str, target_modules: str | Sequence[str]) -> bool:
    """peft's rule: a string is a regex on the full name; a list matches the name or its last components."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith("." + t) for t in target_modules)
