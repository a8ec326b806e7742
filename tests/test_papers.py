"""Paper specs: every experiment, figure and claim they name exists; a bad spec fails with one line."""

import dataclasses
import subprocess
import sys

import pytest

from bench.claims import Claim
from bench.errors import UserError
from bench.papers import PAPERS, load, validate


@pytest.mark.parametrize("paper", PAPERS)
def test_every_spec_names_existing_experiments_figures_and_claims(paper):
    validate(load(paper))


def test_a_spec_naming_a_missing_experiment_fails_with_one_line(tmp_path):
    spec = dataclasses.replace(load("mora"), experiments={"small": ("mora_nonexistent",)})
    with pytest.raises(UserError, match=r"experiment 'mora_nonexistent_small' \(small tier\) has no file"):
        validate(spec)


def test_a_claim_on_an_experiment_the_tier_does_not_run_fails():
    claim = Claim("x", "Table 9", "nothing", "mora_missing", "final.acc", ({"method.name": "mora"},))
    spec = dataclasses.replace(load("mora"), claims=(claim,))
    with pytest.raises(UserError, match="claim 'x' names experiment 'mora_missing'"):
        validate(spec)


def test_the_makefile_reads_experiments_from_the_spec():
    out = subprocess.run([sys.executable, "-m", "bench.papers", "experiments", "cola", "small"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{e}_small" for e in load("cola").experiments["small"]]
    bad = subprocess.run([sys.executable, "-m", "bench.papers", "experiments", "nope", "small"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "valid: olora, cola, salora, mora" in bad.stderr
