"""`python -m bench.reproduce [PAPER ...]` (`make reproduce`, `make reproduce-<paper>`): a spec's experiments for a
tier, then its page.

    python -m bench.reproduce mora --scale small --seeds 1,2,3     # what `make reproduce-mora SEEDS=1,2,3` runs
    python -m bench.reproduce                                      # every paper (`make reproduce`)
    python -m bench.reproduce compare                              # the comparison's grid (as `make compare`)

The sweeps come from the spec (bench/papers/<name>.py, ``plan``); every sweep runs even if one fails, the page is
written from whatever finished (failed runs read "failed" in their cells), and the command exits 1 naming the
sweeps that failed. Options default to the environment the Makefile exports: SCALE, SEEDS, LAUNCHER, JOBS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..cli_args import one_line_parser
from ..errors import UserError, report_and_exit
from .launch import LaunchOptions, Sweep, launch_options, run_sweeps, runs_dir_of


def sweeps_of(spec: Any, options: LaunchOptions) -> list[Sweep]:
    """The spec's sweeps at the options' tier, in its order, each with the launch options' overrides."""
    return [Sweep(spec.sweep_title(exp, fixed, options.scale), exp, [*options.overrides(), *fixed])
            for exp, fixed in spec.plan(options.scale)]


def check_seeds(spec: Any, options: LaunchOptions) -> None:
    """SEEDS= names final seeds: a comparison's tuning seeds are never among them."""
    from ..report.tuning import tuning_seeds

    clash = sorted(set(int(s) for s in (options.seeds or "").split(",") if s) & tuning_seeds(spec))
    if clash:
        raise UserError(f"SEEDS={options.seeds!r} is not valid for {spec.name}: {', '.join(map(str, clash))} "
                        f"{'is a tuning seed' if len(clash) == 1 else 'are tuning seeds'} "
                        f"({', '.join(map(str, sorted(tuning_seeds(spec))))}), never a final seed")


def current_runs(spec: Any, runs_dir: Path) -> list:
    """The spec's committed records and the finished runs of ``runs_dir`` (these win by name), as the final stage
    reads them: nothing is written."""
    from ..report.records import collect_runs, load_records
    from ..paths import RESULTS_DIR

    by_name = {run.name: run for run in load_records(RESULTS_DIR, spec.name)[0]}
    if runs_dir.is_dir():
        for run in collect_runs(runs_dir)[0]:
            if run.status != "incomplete" and run.tags[0] == spec.name:
                by_name[run.name] = run
    return list(by_name.values())


def stage_lines(spec: Any, options: LaunchOptions, runs_dir: Path) -> list[str]:
    """What a comparison with a tuning stage still has to run, with the estimate (the page's Scale and compute)."""
    if getattr(spec, "tuning", None) is None or options.scale not in spec.tuning.tiers:
        return []
    from ..report.leaderboard import compute_lines

    return [line for line in compute_lines(spec, current_runs(spec, runs_dir), options.scale) if line]


def run_spec(spec: Any, options: LaunchOptions, label: str, runs_dir: Path | None = None) -> list[str]:
    """Run the spec's sweeps (finished runs are skipped); the titles of those that did not finish cleanly. A
    comparison with a tuning stage runs in three steps: the one-rate grid and the tuning stage; the point a ladder
    step beyond each grid edge the tuning chose; then the final stage its tuning records ask for (each moved arm's
    final seeds at its chosen setting)."""
    runs_dir = runs_dir or runs_dir_of([])
    if getattr(spec, "tuning", None) is not None:
        check_seeds(spec, options)
        for line in stage_lines(spec, options, runs_dir):
            print(f"{label}: {line}", flush=True)
    failed = run_sweeps(label, sweeps_of(spec, options), runs_dir, options.env())
    if getattr(spec, "tuning", None) is not None and options.scale in spec.tuning.tiers:
        stages = (("extension stage", spec.extension_plan, "one ladder step beyond the grid edges the tuning stage "
                   "chose"), ("final stage", spec.final_plan, "at the settings the tuning stage chose"))
        for stage, plan_of, what in stages:
            sweeps = [Sweep(spec.sweep_title(exp, fixed, options.scale), exp, [*options.overrides(), *fixed])
                      for exp, fixed in plan_of(options.scale, current_runs(spec, runs_dir))]
            print(f"{label}: {stage}: {len(sweeps)} sweep(s) {what}", flush=True)
            failed += run_sweeps(f"{label} / {stage}", sweeps, runs_dir, options.env())
    return failed


def main(argv: list[str] | None = None) -> int:
    from ..papers import load, names, validate

    parser = one_line_parser("python -m bench.reproduce", __doc__.splitlines()[0])
    parser.add_argument("papers", nargs="*", metavar="PAPER", help=f"default: all ({', '.join(names())})")
    parser.add_argument("--scale", default=os.environ.get("SCALE"), help="tiny | small (default) | paper")
    parser.add_argument("--seeds", default=os.environ.get("SEEDS"), help="a comma list of integers (default: each experiment's)")
    parser.add_argument("--launcher", default=os.environ.get("LAUNCHER"), help="basic | joblib | local | slurm")
    parser.add_argument("--jobs", default=os.environ.get("JOBS"), help="parallel jobs of the joblib launcher (default 2)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        unknown = [p for p in args.papers if p not in names(None)]
        if unknown:
            raise UserError(f"PAPER={unknown[0]!r} is not valid; valid: {', '.join(names(None))}")
        options = launch_options(args.scale, args.seeds, args.launcher, args.jobs)
        plans = {}
        for name in args.papers or names():
            spec = load(name, kind=None)
            validate(spec)
            if getattr(spec, "tuning", None) is not None:
                check_seeds(spec, options)
            plans[name] = spec
        runs_dir = runs_dir_of([])
    except UserError as err:
        report_and_exit(err)
    failed = []
    for name, spec in plans.items():
        failed += run_spec(spec, options, f"reproduce {name}", runs_dir)
        report = subprocess.run([sys.executable, *spec.report_argv()])
        if report.returncode != 0:
            failed.append(f"{name} / report")
    if failed:
        print(f"reproduce: {len(failed)} sweep(s) did not finish cleanly: {'; '.join(failed)} (see FAILED lines and "
              "error.json in their run dirs; the same command resumes them)", file=sys.stderr)
        return 1
    return 0
