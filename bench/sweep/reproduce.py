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
from typing import Any

from ..cli_args import one_line_parser
from ..errors import UserError, report_and_exit
from .launch import LaunchOptions, Sweep, launch_options, run_sweeps, runs_dir_of


def sweeps_of(spec: Any, options: LaunchOptions) -> list[Sweep]:
    """The spec's sweeps at the options' tier, in its order, each with the launch options' overrides."""
    return [Sweep(spec.sweep_title(exp, fixed, options.scale), exp, [*options.overrides(), *fixed])
            for exp, fixed in spec.plan(options.scale)]


def run_spec(spec: Any, options: LaunchOptions, label: str) -> list[str]:
    """Run the spec's sweeps (finished runs are skipped); the titles of those that did not finish cleanly."""
    return run_sweeps(label, sweeps_of(spec, options), runs_dir_of([]), options.env())


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
            plans[name] = (spec, sweeps_of(spec, options))
        runs_dir = runs_dir_of([])
    except UserError as err:
        report_and_exit(err)
    failed = []
    for name, (spec, sweeps) in plans.items():
        failed += run_sweeps(f"reproduce {name}", sweeps, runs_dir, options.env())
        report = subprocess.run([sys.executable, *spec.report_argv()])
        if report.returncode != 0:
            failed.append(f"{name} / report")
    if failed:
        print(f"reproduce: {len(failed)} sweep(s) did not finish cleanly: {'; '.join(failed)} (see FAILED lines and "
              "error.json in their run dirs; the same command resumes them)", file=sys.stderr)
        return 1
    return 0
