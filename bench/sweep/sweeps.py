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


def sweep_params(experiment: str, overrides: Sequence[str] = ()) -> dict:
    """The experiment's ``hydra.sweeper.params`` as the command line composes them."""
    parser = OverridesParser.create()
    # A swept value on the command line (SEEDS=1,2,3, a tuning grid's method.lr_ratio=2.0,4.0) composes only in a
    # multirun; the sweeper's params are read with its first value in its place.
    first = [f"{o.key_or_group}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
             for o in parser.parse_overrides([f"experiment={experiment}", *overrides])]
    return dict(_compose(first, hydra_config=True).hydra.sweeper.params or {})


def sweep_jobs(experiment: str, overrides: Sequence[str] = (), params: dict | None = None) -> list[list[str]]:
    """Each job's overrides, in the order the sweep launches them. ``params``: the experiment's sweeper params when
    the caller has them already (they do not depend on an arm or a value override)."""
    command_line = [f"experiment={experiment}", *overrides]
    parser = OverridesParser.create()
    params = sweep_params(experiment, overrides) if params is None else params
    parsed = parser.parse_overrides([*(f"{k}={v}" for k, v in params.items()), *command_line])
    (jobs,) = BasicSweeper.split_arguments(parsed, None)
    return jobs


def run_id_of(job: Sequence[str]) -> str:
    cfg = _compose(job)
    return resolvers.run_id(_root_=cfg)


def _experiment_of(record: Path) -> str | None:
    """The experiment a finished run names; None for a failed run (its record keeps only its config) or an unreadable
    record."""
    return ((read_json(record) or {}).get("result") or {}).get("experiment")


def unrun_experiments(records_dir: Path, sweeps: dict[str, list[list[str]]]) -> list[str]:
    """The experiments of ``sweeps`` with no record at all: planned, not run yet (their claims and cells read "not
    run" on the page). Named apart from mismatches: no record of theirs can sit beside a fresh run's."""
    counts = Counter(_experiment_of(r) for r in Path(records_dir).glob("*.json"))
    return [experiment for experiment in sweeps if counts[experiment] == 0]


def record_mismatches(records_dir: Path, sweeps: dict[str, list[list[str]]], every_job: bool = False) -> list[str]:
    """One line per experiment whose committed records are not its sweep's runs: a count that differs, or a job whose
    run id no record carries. ``every_job`` composes every job (minutes for the comparison); without it, the first
    and the last (the ids move together when an experiment's default changes, not when one arm's file does)."""
    records = sorted(Path(records_dir).glob("*.json"))
    names = {r.stem for r in records}
    counts = Counter(_experiment_of(r) for r in records)
    problems = []
    for experiment, jobs in sweeps.items():
        if counts[experiment] == 0:
            continue   # not run yet: its page says "not run" (``unrun_experiments``); nothing of it can double
        if counts[experiment] != len(jobs):
            problems.append(f"{records_dir}: {counts[experiment]} records of {experiment}, its sweep has "
                            f"{len(jobs)} jobs")
            continue
        for job in (jobs if every_job else jobs[:1] + jobs[1:][-1:]):
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
