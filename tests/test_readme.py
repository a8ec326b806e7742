"""The README is a user's guide: short, the main commands, and pointers to the pages and documents that hold the
numbers (it carries no generated table and no measurement log of its own)."""

from __future__ import annotations

import re

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_the_readme_is_a_short_users_guide():
    assert len(README.splitlines()) < 200
    for command in ("make reproduce", "make test", "make compare", "make report", "make smoke", "python -m bench.plan"):
        assert command in README, command
    for section in ("## Install", "## Main commands", "## Results", "## Adding a method", "## Adding a paper", "## Safety"):
        assert section in README, section


def test_every_link_in_the_readme_exists():
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", README) if "://" not in target]
    assert "results/README.md" in links and "docs/performance.md" in links and "CHANGELOG.md" in links
    missing = [link for link in links if link and not (REPO / link).exists()]
    assert not missing, missing
