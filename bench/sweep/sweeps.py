"""A sweep's jobs as `python -m bench.train -m experiment=<name> <overrides>` launches them, and whether the committed
records are those jobs' runs.

The expansion is Hydra's own: the experiment's ``hydra.sweeper.params`` followed by the command line's overrides (a
key given twice takes the later value), as a cartesian product by the basic sweeper's ``split_arguments``. A record
is named by its run's id (``${run_id:}``, a digest of the config that defines the run): a config change that moves
the ids leaves the committed records naming runs no fresh reproduction writes, and a fresh run's record would then
sit beside the old one, doubling the seeds of a cell. ``record_mismatches`` says so before that happens.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from .. import resolvers
from ..cli import CONF_DIR, CONFIG_NAME
from ..records import read_json


def _compose(overrides: Sequence[str], hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=hydra_config)


def sweep_jobs(experiment: str, overrides: Sequence[str] = ()) -> list[list[str]]:
    """Each job's overrides, in the order the sweep launches them."""
    command_line = [f"experiment={experiment}", *overrides]
    params = _compose(command_line, hydra_config=True).hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([*(f"{k}={v}" for k, v in params.items()), *command_line])
    (jobs,) = BasicSweeper.split_arguments(parsed, None)
    return jobs


def run_id_of(job: Sequence[str]) -> str:
    cfg = _compose(job)
    return resolvers.run_id(_root_=cfg)


def _experiment_of(record: Path) -> str | None:
    """The experiment a finished run names; None for a failed run (its record keeps only its config) or an unreadable
    record."""
    return ((read_json(record) or {}).get("result") or {}).get("experiment")


def record_mismatches(records_dir: Path, sweeps: dict[str, list[list[str]]]) -> list[str]:
    """One line per experiment whose committed records are not its sweep's runs: a count that differs, or a first or
    last job whose run id no record carries (the ids move together when a config default changes)."""
    records = sorted(Path(records_dir).glob("*.json"))
    names = {r.stem for r in records}
    counts = Counter(_experiment_of(r) for r in records)
    problems = []
    for experiment, jobs in sweeps.items():
        if counts[experiment] != len(jobs):
            problems.append(f"{records_dir}: {counts[experiment]} records of {experiment}, its sweep has "
                            f"{len(jobs)} jobs")
            continue
        for job in jobs[:1] + jobs[1:][-1:]:   # the first and the last
            name = run_id_of(job)
            if name not in names:
                problems.append(f"{records_dir}: no record {name}.json for the job {' '.join(job)} (the current "
                                f"configs name it so; re-run {experiment} or restore the config the records came from)")
                break
    for experiment in sorted(set(counts) - set(sweeps), key=str):
        what = ("records that name no experiment (failed or unreadable runs)" if experiment is None
                else f"records of {experiment}")
        problems.append(f"{records_dir}: {counts[experiment]} {what}, which no sweep here launches")
    return problems
