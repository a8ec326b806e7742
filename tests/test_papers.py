"""Paper specs: every experiment, figure and claim they name exists; a bad spec fails with one line."""

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest

from bench.report.claims import Claim
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
    spec = dataclasses.replace(load("mora"), claims=(claim,), coverage=())   # coverage names the real claims
    with pytest.raises(UserError, match="claim 'x' names experiment 'mora_missing'"):
        validate(spec)


def test_the_makefile_reads_experiments_from_the_spec():
    out = subprocess.run([sys.executable, "-m", "bench.papers", "experiments", "cola", "small"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{e}_small" for e in load("cola").experiments["small"]]
    bad = subprocess.run([sys.executable, "-m", "bench.papers", "experiments", "nope", "small"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "valid: olora, cola, salora, mora" in bad.stderr


def test_the_committed_records_are_the_runs_a_fresh_reproduction_launches():
    """A record whose run id the current configs no longer produce would sit beside the fresh run's record and
    double its cell's seeds (the comparison's records once did): each paper's and the comparison's records are
    exactly their small-tier sweeps' runs, by count and each experiment's first and last run id here (composing every
    job takes minutes: `make check`, which CI runs, holds every one)."""
    from bench.papers.__main__ import committed_record_problems

    assert committed_record_problems() == []


def test_records_that_name_other_runs_are_named_in_one_line_each(tmp_path):
    from bench.papers.__main__ import RESULTS
    from bench.sweep.sweeps import _experiment_of, record_mismatches, run_id_of

    # two experiments and their records alone (a spec may plan experiments not run yet: those are named apart)
    sweeps = {e: jobs for e, jobs in load("cola").sweeps("small").items()
              if e in ("cola_chain_small", "cola_stepdown_small")}
    records = tmp_path / "records"
    records.mkdir()
    for path in (RESULTS / "cola" / "records").glob("*.json"):
        if _experiment_of(path) in sweeps:
            shutil.copy(path, records / path.name)
    assert record_mismatches(records, sweeps) == [] == record_mismatches(records, sweeps, every_job=True)
    # one arm's file changed: only that arm's run ids move, none of them an experiment's first or last job (the
    # comparison's prefix records once did); the sampled check misses it, every_job (make check, in CI) names it
    middle = run_id_of(sweeps["cola_chain_small"][len(sweeps["cola_chain_small"]) // 2])
    (records / f"{middle}.json").rename(records / f"{middle[:-8]}00000000.json")
    assert record_mismatches(records, sweeps) == []
    (stale,) = record_mismatches(records, sweeps, every_job=True)
    assert f"no record {middle}.json" in stale, stale
    for i, path in enumerate(sorted(records.glob("*.json"))):  # a config default changed: every run id moves
        path.rename(path.with_name(f"{path.stem[:-8]}{i:08d}.json"))
    drifted = record_mismatches(records, sweeps)
    assert len(drifted) == 2 and all("no record" in line and "\n" not in line for line in drifted), drifted
    for path in sorted(records.glob("*.json"))[:3]:
        path.unlink()
    short = record_mismatches(records, sweeps)
    assert any("records of cola_chain_small, its sweep has 30 jobs" in line for line in short), short


def test_an_experiment_without_records_is_named_as_not_run_not_as_a_mismatch(tmp_path):
    from bench.papers.__main__ import RESULTS
    from bench.sweep.sweeps import record_mismatches, unrun_experiments

    sweeps = {e: jobs for e, jobs in load("cola").sweeps("small").items()
              if e in ("cola_chain_small", "cola_stepdown_small")}
    records = tmp_path / "records"
    shutil.copytree(RESULTS / "cola" / "records", records)
    for path in records.glob("*.json"):  # only cola_chain_small's records stay: the other experiments are not swept here
        if json.loads(path.read_text())["result"].get("experiment", "") != "cola_chain_small":
            path.unlink()
    assert unrun_experiments(records, sweeps) == ["cola_stepdown_small"]
    assert record_mismatches(records, sweeps) == []
