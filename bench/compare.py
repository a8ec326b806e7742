"""`make compare` / `python -m bench.compare`: every method of the suite on one task per paper's family, at two
matched trainable-parameter budgets, over seeds — the head-to-head none of the four papers has.

    python -m bench.compare                  # the report alone: results/compare/ from the records (never trains)
    python -m bench.compare run [--scale S]  # train what is missing, then the report (make compare)

The grid is the comparison's spec (bench/papers/compare.py); its page is drawn by bench/report/leaderboard.py and its
sweeps run as any spec's (bench/sweep/reproduce.py: `python -m bench.reproduce compare` runs the same). At the small
tier `run` goes in three steps: the one-rate grid and the tuning stage (each arm's setting on a validation split, by
tuning seeds), the point a ladder step beyond each grid edge a cell chose, then the final stage the tuning records ask
for (bench/report/tuning.py); it first prints what each stage has run and still has to run, estimated from the
records' wall time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable

from .cli_args import one_line_parser
from .errors import UserError, report_and_exit
from .papers.compare import SPEC
from .report.leaderboard import report
from .sweep.launch import launch_options
from .sweep.reproduce import run_spec


def main(argv: Iterable[str] | None = None) -> int:
    parser = one_line_parser("python -m bench.compare", __doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", default="report", choices=("report", "run"))
    parser.add_argument("--scale", default=os.environ.get("SCALE"), help="tier to train (run): small (default) | paper")
    parser.add_argument("--seeds", default=os.environ.get("SEEDS"), help="run: a comma list of integers")
    parser.add_argument("--launcher", default=os.environ.get("LAUNCHER"), help="run: basic | joblib | local | slurm")
    parser.add_argument("--jobs", default=os.environ.get("JOBS"), help="run: parallel jobs of the joblib launcher")
    parser.add_argument("--runs", default=os.environ.get("LORABENCH_RUNS", "runs"))
    parser.add_argument("--out", default="results")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the page even if some records cannot be used (the page lists them)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    failed: list[str] = []
    try:
        if args.action == "run":
            failed = run_spec(SPEC, launch_options(args.scale, args.seeds, args.launcher, args.jobs), SPEC.name)
        report(SPEC, Path(args.runs), Path(args.out), args.allow_missing)
    except UserError as err:
        report_and_exit(err)
    if failed:
        print(f"compare: {len(failed)} sweep(s) did not finish cleanly: {'; '.join(failed)} (see FAILED lines and "
              "error.json in their run dirs; the same command resumes them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
