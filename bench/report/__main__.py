"""`python -m bench.report [--paper P] [--runs DIR] [--out DIR]` (`make report`): results/ from run records alone.

For every published table (bench/published/<paper>_table*.csv) it writes results/<paper>/<table>.md and .csv:
the paper's layout (rows, columns, every published cell) with the reproduced value beside the published one,
seeds as mean ± std, the winner per the paper's convention in bold; then the same layout at the scale the runs
were made at (tiny stand-in models), since tiny numbers are not the paper's models. One PNG per figure, the
paper's claims in words with the numbers behind them at the top of results/<paper>/README.md, and
results/README.md indexing everything with the scale of every number. It never trains, is idempotent, and a
missing or failed run shows as such, never as a number.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .. import papers
from ..cli_args import one_line_parser
from ..errors import UserError, report_and_exit
from .page import report_paper, write_index
from .records import gather


def main(argv: Iterable[str] | None = None) -> None:
    parser = one_line_parser("python -m bench.report", __doc__.splitlines()[0])
    parser.add_argument("--paper", choices=papers.names(), action="append", help="only this paper (repeatable)")
    parser.add_argument("--runs", default=os.environ.get("LORABENCH_RUNS", "runs"),
                        help="runs directory: its finished runs become records in --out first (skipped if absent)")
    parser.add_argument("--out", default="results", help="output directory (holds <paper>/records/)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the pages even if some records cannot be used (each page lists them)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out={args.out!r} is a file; valid: a directory")
        names = args.paper or list(papers.names())
        runs_dir = Path(args.runs)
        runs, excluded, synced = gather(runs_dir, out, names, args.allow_missing)
        if not any(runs.values()):
            raise UserError(f"no run records for {', '.join(names)} in {out} and none finished in --runs={args.runs!r}; "
                            "train first (make reproduce) — nothing was written")
        summaries = {p: report_paper(papers.load(p), runs[p], out, [e for e in excluded if e.owner == p]) for p in names}
        write_index(out, summaries, papers.specs("paper"), [spec.index_line for spec in papers.specs("comparison")],
                    [e for e in excluded if e.owner is None])
        print(f"report: {out / 'README.md'} ({sum(map(len, runs.values()))} records, {synced} new from {runs_dir})")
    except UserError as err:
        report_and_exit(err)
    except OSError as err:  # a read-only or full --out: one line; atomic writes leave every file whole
        report_and_exit(UserError(f"--out={args.out!r}: cannot write {err.filename or args.out} ({err.strerror}); "
                                  "valid: a directory you can write"))


if __name__ == "__main__":
    main()
