"""``python -m bench.smoke [PAPER ...]`` (``make smoke``): every paper-scale job of the named papers (all by default,
and ``compare``: bench.compare's paper-scale grid) as a smoke run (bench/run_miniature.py: the job on a miniature of
its model and the local sample data, 2 steps), covering every model × task × method combination of each sweep with
one value of every other swept key (one seed, one rank, one grid point), and prints the number of jobs per paper.
Exit 1 if any failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from ..errors import UserError, report_and_exit

# Sweep keys whose every value a smoke run covers; any other swept key runs at its first value.
COVERED_KEYS = ("model", "task", "method", "arm")


def sweep_overrides(experiment: str, fixed: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """The experiment's sweep with every covered key whole and every other swept key at its first value; the job count.
    ``fixed`` overrides (key=value) replace a swept key."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .. import resolvers  # noqa: F401

    from ..paths import CONF_DIR as conf
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "scale=paper"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {})
    parser = OverridesParser.create()
    overrides, jobs = [], 1
    fixed_keys = {item.split("=", 1)[0] for item in fixed}
    overrides.extend(fixed)
    for key, value in params.items():
        if key in fixed_keys:
            continue
        override = parser.parse_overrides([f"{key}={value}"])[0]
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(value)]
        if key not in COVERED_KEYS:
            values = values[:1]
        jobs *= len(values)
        overrides.append(f"{key}={','.join(values)}")
    return overrides, jobs


def smoke_jobs(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(paper-scale experiment, fixed overrides) of a spec's sweeps: a paper's, or the comparison's grid and its
    reference arm."""
    from ..papers import load, names

    if name not in names(None):
        raise UserError(f"smoke: {name!r}; valid: {', '.join(names(None))}")
    return load(name, kind=None).plan("paper")


def print_plans(plans: dict[str, list[tuple[str, tuple[str, ...]]]]) -> None:
    """What each paper-scale job needs on a GPU (bench.plan), before its miniature proves that it runs."""
    from ..plan import USABLE_GB, DEFAULT_MFU, DEFAULT_TFLOPS, plan_experiment, render

    for name, plan in plans.items():
        jobs = [p for experiment, fixed in plan for p in plan_experiment(experiment, ["scale=paper", *fixed])]
        print(f"smoke: {name}: the paper-scale plan (python -m bench.plan)\n"
              + render(jobs, USABLE_GB, DEFAULT_TFLOPS, DEFAULT_MFU), flush=True)


def main(argv: list[str] | None = None) -> int:
    from ..papers import names

    from .launch import launch_options

    args = sys.argv[1:] if argv is None else argv
    try:
        options = [a for a in args if a.startswith("-")]
        if options:
            raise UserError(f"option {options[0]!r} is not valid; usage: python -m bench.smoke [PAPER ...] "
                            f"(PAPER one of {', '.join(names(None))})")
        plans = {name: smoke_jobs(name) for name in args or names(None)}
        jobs_at_once = launch_options(None, None, None, os.environ.get("JOBS")).jobs
    except UserError as err:
        report_and_exit(err)
    print_plans(plans)
    runs_dir = Path("runs") / "smoke"
    failed, counts = [], {}
    started = time.time()
    for name, plan in plans.items():
        counts[name] = 0
        for experiment, fixed in plan:
            overrides, jobs = sweep_overrides(experiment, fixed)
            counts[name] += jobs
            print(f"smoke: {name} / {experiment} {' '.join(fixed)}: {jobs} job(s)", flush=True)
            # Two jobs at a time, one thread each (as the CPU tiers); force: a smoke checks the code as it is now.
            proc = subprocess.run([sys.executable, "-m", "bench.train", "-m", f"experiment={experiment}", "scale=paper",
                                   "smoke=true", "force=true", f"paths.runs_dir={runs_dir}", "hydra/launcher=joblib",
                                   f"hydra.launcher.n_jobs={jobs_at_once}", *overrides],
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                failed.append(" ".join((experiment, *fixed)))
    total = sum(counts.values())
    print("smoke: " + ", ".join(f"{paper} {n} jobs" for paper, n in counts.items())
          + f"; {total} in all, {time.time() - started:.0f} s; failed experiments: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
