"""Where the suite's own files live: one place, so a module can move without recounting ``parents[N]``."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent          # bench/
REPO = PACKAGE.parent                              # the checkout (or site-packages, installed)
CONF_DIR = REPO / "conf"                           # Hydra's config tree
EXPERIMENTS_DIR = CONF_DIR / "experiment"
PUBLISHED_DIR = PACKAGE / "published"              # the papers' numbers (package data)
RESULTS_DIR = REPO / "results"                     # generated pages and the committed records
