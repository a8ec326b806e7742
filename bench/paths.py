"""Where the suite's own files live: one place, so a module can move without recounting ``parents[N]``."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent          # bench/
REPO = PACKAGE.parent                              # the checkout (or site-packages, installed)
CONF_DIR = PACKAGE / "conf"                        # Hydra's config tree (bench/conf links to the checkout's conf/; the wheel holds it)
EXPERIMENTS_DIR = CONF_DIR / "experiment"
PUBLISHED_DIR = PACKAGE / "published"              # the papers' numbers (package data)
RESULTS_DIR = REPO / "results"                     # generated pages and the committed records
