"""`python -m bench.papers experiments PAPER TIER` | `python -m bench.papers check`."""

from __future__ import annotations

import sys

from ..errors import UserError, report_and_exit
from . import PAPERS, load, validate

USAGE = "usage: python -m bench.papers experiments PAPER TIER | python -m bench.papers check"


def main(argv: list[str]) -> None:
    try:
        if argv[:1] == ["check"] and len(argv) == 1:
            for paper in PAPERS:
                validate(load(paper))
            print(f"papers: {len(PAPERS)} specs ok")
        elif argv[:1] == ["experiments"] and len(argv) == 3:
            spec = load(argv[1])
            validate(spec)
            print("\n".join(spec.experiment_files(argv[2])))
        else:
            raise UserError(f"arguments {' '.join(argv) or '(none)'!r} not understood; {USAGE}")
    except UserError as err:
        report_and_exit(err)


if __name__ == "__main__":
    main(sys.argv[1:])
