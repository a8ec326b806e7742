"""``python -m bench.smoke [PAPER ...]`` (``make smoke``): every paper-scale job of the named papers (all by default,
and ``compare``: bench.compare's paper-scale grid) as a smoke run (bench/run_miniature.py: the job on a miniature of
its model and the local sample data, 2 steps), covering every model × task × method combination of each sweep with
one value of every other swept key (one seed, one rank, one grid point), and prints the number of jobs per paper.
JOBS sweeps run at a time, each sweep's jobs one after another in its own process, its output in
``runs/smoke/logs/``; a failed sweep's last lines are printed. Exit 1 if any failed.
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


def run_sweep(experiment: str, overrides: list[str], runs_dir: Path, log: Path) -> tuple[int, float]:
    """One sweep's smoke jobs, one after another in one process (Hydra's basic launcher: the imports are paid once per
    sweep, not once per job); its output goes to ``log``. (exit code, seconds)."""
    started = time.time()
    with open(log, "w") as out:
        # force: a smoke checks the code as it is now; one thread: JOBS sweeps share the cores.
        proc = subprocess.run([sys.executable, "-m", "bench.train", "-m", f"experiment={experiment}", "scale=paper",
                               "smoke=true", "force=true", f"paths.runs_dir={runs_dir}", "hydra/launcher=basic",
                               *overrides], stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    return proc.returncode, time.time() - started


def main(argv: list[str] | None = None) -> int:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    from ..papers import names
    from .launch import launch_options

    args = sys.argv[1:] if argv is None else argv
    try:
        options = [a for a in args if a.startswith("-")]
        if options:
            raise UserError(f"option {options[0]!r} is not valid; usage: python -m bench.smoke [PAPER ...] "
                            f"(PAPER one of {', '.join(names(None))})")
        plans = {name: smoke_jobs(name) for name in args or names(None)}
        sweeps_at_once = launch_options(None, None, None, os.environ.get("JOBS")).jobs
    except UserError as err:
        report_and_exit(err)
    print_plans(plans)
    runs_dir = Path("runs") / "smoke"
    logs = runs_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # Composed here, one at a time: Hydra's global state is not for threads.
    sweeps = [(name, experiment, fixed, *sweep_overrides(experiment, fixed))
              for name, plan in plans.items() for experiment, fixed in plan]
    failed, counts = [], dict.fromkeys(plans, 0)
    started = time.time()
    # JOBS sweeps at a time, each in its own process: a sweep of one job no longer leaves a core idle.
    with ThreadPoolExecutor(sweeps_at_once) as pool, tqdm(total=len(sweeps), desc="smoke sweeps", unit="sweep") as bar:
        futures = {}
        for i, (name, experiment, fixed, overrides, jobs) in enumerate(sweeps):
            log = logs / f"{i:03d}_{experiment}.log"
            futures[pool.submit(run_sweep, experiment, overrides, runs_dir, log)] = (name, experiment, fixed, jobs, log)
        for future in as_completed(futures):
            name, experiment, fixed, jobs, log = futures[future]
            code, seconds = future.result()
            counts[name] += jobs
            title = " ".join((experiment, *fixed))
            bar.write(f"smoke: {name} / {title}: {jobs} job(s) {'ok' if code == 0 else 'FAILED'} in {seconds:.0f} s"
                      + ("" if code == 0 else f"; its output: {log}"))
            if code != 0:
                failed.append(title)
                bar.write("".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:]))
            bar.update()
    total = sum(counts.values())
    print("smoke: " + ", ".join(f"{paper} {n} jobs" for paper, n in counts.items())
          + f"; {total} in all, {time.time() - started:.0f} s; failed experiments: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
