"""`python -m bench.reproduce [PAPER ...]` (`make reproduce`, `make reproduce-<paper>`): a paper's experiments for a
tier, then its report.

    python -m bench.reproduce mora --scale small --seeds 1,2,3     # what `make reproduce-mora SEEDS=1,2,3` runs
    python -m bench.reproduce                                      # every paper (`make reproduce`)

The experiments come from the paper's spec (bench/papers/<paper>.py); every sweep runs even if one fails, the report
is written from whatever finished (failed runs read "failed" in their cells), and the command exits 1 naming the
sweeps that failed. Options default to the environment the Makefile exports: SCALE, SEEDS, LAUNCHER, JOBS.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ..cli_args import one_line_parser
from ..errors import UserError, report_and_exit
from .launch import Sweep, launch_options, run_sweeps, runs_dir_of


def main(argv: list[str] | None = None) -> int:
    from ..papers import PAPERS, load, validate

    parser = one_line_parser("python -m bench.reproduce", __doc__.splitlines()[0])
    parser.add_argument("papers", nargs="*", metavar="PAPER", help=f"default: all ({', '.join(PAPERS)})")
    parser.add_argument("--scale", default=os.environ.get("SCALE"), help="tiny | small (default) | paper")
    parser.add_argument("--seeds", default=os.environ.get("SEEDS"), help="a comma list of integers (default: each experiment's)")
    parser.add_argument("--launcher", default=os.environ.get("LAUNCHER"), help="basic | joblib | local | slurm")
    parser.add_argument("--jobs", default=os.environ.get("JOBS"), help="parallel jobs of the joblib launcher (default 2)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        unknown = [p for p in args.papers if p not in PAPERS]
        if unknown:
            raise UserError(f"PAPER={unknown[0]!r} is not valid; valid: {', '.join(PAPERS)}")
        options = launch_options(args.scale, args.seeds, args.launcher, args.jobs)
        papers = args.papers or list(PAPERS)
        plans = {}
        for paper in papers:
            spec = load(paper)
            validate(spec)
            plans[paper] = [Sweep(f"{paper} / {exp} ({options.scale})", exp, options.overrides())
                            for exp in spec.experiment_files(options.scale)]
        runs_dir = runs_dir_of([])
    except UserError as err:
        report_and_exit(err)
    failed = []
    for paper, sweeps in plans.items():
        failed += run_sweeps(f"reproduce {paper}", sweeps, runs_dir, options.env())
        report = subprocess.run([sys.executable, "-m", "bench.report", "--paper", paper])
        if report.returncode != 0:
            failed.append(f"{paper} / report")
    if failed:
        print(f"reproduce: {len(failed)} sweep(s) did not finish cleanly: {'; '.join(failed)} (see FAILED lines and "
              "error.json in their run dirs; the same command resumes them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
