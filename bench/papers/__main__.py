"""`python -m bench.papers list` | `experiments PAPER TIER` | `register PAPER [--reason TEXT]` | `check`.

``register``: the paper's claims as they stand, frozen in bench/papers/registrations/<paper>.json (bench/papers/
registry.py); a changed or withdrawn claim needs a reason. ``check``: every spec names existing experiments, figures
and tiers, every claim is its registration, and the committed records of every spec (each paper and the
comparison) are the runs their current small-tier sweeps launch (bench/sweep/sweeps.py); each problem is one line,
exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError, report_and_exit
from ..paths import RESULTS_DIR as RESULTS
from . import load, names, specs, validate

USAGE = ("usage: python -m bench.papers list | python -m bench.papers experiments PAPER TIER | "
         "python -m bench.papers register PAPER [--reason TEXT] | python -m bench.papers check")


def committed_record_problems(results: Path = RESULTS, tier: str = "small", every_job: bool = False) -> list[str]:
    from ..sweep.sweeps import record_mismatches

    return [line for spec in specs()
            for line in record_mismatches(results / spec.name / "records", spec.sweeps(tier), every_job)]


def committed_unrun(results: Path = RESULTS, tier: str = "small") -> list[str]:
    """One line per planned experiment without any committed record."""
    from ..sweep.sweeps import unrun_experiments

    return [f"not run yet: {experiment} ({len(spec.sweeps(tier)[experiment])} jobs; its claims and cells read 'not "
            f"run' until `make reproduce-{spec.name}` runs it)" if spec.name != "compare" else
            f"not run yet: {experiment} ({len(spec.sweeps(tier)[experiment])} jobs; `make compare` runs it)"
            for spec in specs() for experiment in unrun_experiments(results / spec.name / "records", spec.sweeps(tier))]


def main(argv: list[str]) -> None:
    try:
        if argv[:1] == ["check"] and len(argv) == 1:
            for spec in specs():
                validate(spec)
            from . import registry

            problems = [line for spec in specs("paper") for line in registry.problems(spec)]
            problems += committed_record_problems(every_job=True)   # every run id: a stale arm is in the middle
            for line in committed_unrun():
                print(line)
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                sys.exit(1)
            print(f"papers: {len(names())} specs ok; every claim is its registration; the committed records are the "
                  "runs of the current sweeps")
        elif argv[:1] == ["register"] and (len(argv) == 2 or (len(argv) == 4 and argv[2] == "--reason")):
            from . import registry

            lines = registry.register(load(argv[1]), reason=argv[3] if len(argv) == 4 else "")
            print("\n".join(lines) or f"papers: every claim of {argv[1]} is registered as it stands")
        elif argv == ["list"]:
            print("\n".join(names()))
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
