"""Running a study's sweeps: `make reproduce-<paper>` and `make compare` both come here.

Each sweep is an ordinary `python -m bench.train -m experiment=<name> ...` in a child process (argument lists, never
a shell line: a value from the command line cannot become a command). Every sweep runs even when an earlier one
failed; at the end one line names the sweeps that did not finish and the command exits 1. While they run, a line
"k of N jobs done, ETA" (N from Hydra's own sweep expansion, k from the run directories of those jobs; the ETA from
this invocation's pace) is printed every ``PROGRESS_EVERY`` seconds, which SLURM logs keep, unlike progress bars.

The options (tier, seeds, launcher, parallel jobs) are validated here once, in one line each, exit 2; the Makefile
passes them through the environment (SCALE, SEEDS, LAUNCHER, JOBS) and never pastes them into a recipe.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..records import ERROR, RESULT

TIERS = ("tiny", "small", "paper")
LAUNCHERS = ("basic", "joblib", "local", "slurm")
PROGRESS_EVERY = 60.0
ARRAY_LIMIT = 1000   # SLURM's default MaxArraySize is 1001: one sweep, one array, at most this many jobs
SEEDS_PATTERN = re.compile(r"[0-9]+(,[0-9]+)*")


@dataclass(frozen=True)
class LaunchOptions:
    scale: str
    seeds: str | None
    launcher: str
    jobs: int

    def overrides(self) -> list[str]:
        out = [f"scale={self.scale}", f"hydra/launcher={self.launcher}"]
        if self.launcher == "joblib":
            out.append(f"hydra.launcher.n_jobs={self.jobs}")
        if self.seeds:
            out.append(f"seed={self.seeds}")
        return out

    def env(self) -> dict[str, str]:
        # The CPU tiers run a sweep's jobs in parallel worker processes, one thread each: a 260K-parameter model's ops
        # are too small to use two threads well, so two jobs at once do ~1.5x the work of one job on two threads.
        return {**os.environ, "OMP_NUM_THREADS": "1"} if self.launcher == "joblib" else dict(os.environ)


def launch_options(scale: str | None, seeds: str | None, launcher: str | None, jobs: str | int | None) -> LaunchOptions:
    """Validate the launch options (empty means the default) or raise a one-line UserError naming the bad one."""
    scale = scale or "small"
    if scale not in TIERS:
        raise UserError(f"SCALE={scale!r} is not valid; valid: {', '.join(TIERS)}")
    original_seeds = seeds
    seeds = (seeds or "").replace(" ", "") or None
    if seeds is not None and not SEEDS_PATTERN.fullmatch(seeds):
        raise UserError(f"SEEDS={original_seeds!r} is not valid; valid: a comma list of integers, e.g. 1,2,3")
    launcher = launcher or ("basic" if scale == "paper" else "joblib")
    if launcher not in LAUNCHERS:
        raise UserError(f"LAUNCHER={launcher!r} is not valid; valid: {', '.join(LAUNCHERS)}")
    jobs = str(jobs if jobs not in (None, "") else 2)
    if not jobs.isdigit() or int(jobs) < 1:
        raise UserError(f"JOBS={jobs!r} is not valid; valid: an integer >= 1")
    return LaunchOptions(scale, seeds, launcher, int(jobs))


@dataclass
class Sweep:
    title: str
    experiment: str
    overrides: list[str] = field(default_factory=list)  # beyond experiment=<name>: tier, launcher, seeds, arms

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.train", "-m", f"experiment={self.experiment}", *self.overrides]


class Progress:
    """Counts the sweeps' jobs that have a result.json or error.json, from a background thread."""

    def __init__(self, label: str, sweeps: list[Sweep], runs_dir: Path):
        self.label, self.sweeps, self.runs_dir = label, sweeps, runs_dir
        self.started = time.time()
        self.run_ids: list[str] | None = None
        self.done_at_start: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _expand(self) -> list[str]:
        from .sweeps import run_id_of, sweep_jobs

        return [run_id_of(job) for s in self.sweeps for job in sweep_jobs(s.experiment, s.overrides)]

    def done(self) -> int:
        return sum(1 for rid in self.run_ids or () if (self.runs_dir / rid / RESULT).exists()
                   or (self.runs_dir / rid / ERROR).exists())

    def line(self) -> str | None:
        if not self.run_ids:
            return None
        done, total = self.done(), len(self.run_ids)
        elapsed = time.time() - self.started
        new = done - (self.done_at_start or 0)
        eta = f", ETA {_minutes(elapsed / new * (total - done))}" if new > 0 and done < total else ""
        return f"{self.label}: {done} of {total} jobs done, {_minutes(elapsed)} elapsed{eta}"

    def _loop(self) -> None:
        try:
            self.run_ids = self._expand()
        except Exception as err:  # progress is a courtesy: a sweep that cannot be expanded here still runs
            print(f"{self.label}: no progress count ({type(err).__name__}: {err})", file=sys.stderr, flush=True)
            return
        self.done_at_start = self.done()
        while not self._stop.wait(PROGRESS_EVERY):
            print(self.line(), flush=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def split_array(sweep: Sweep, limit: int = ARRAY_LIMIT) -> list[Sweep]:
    """A SLURM sweep is one job array, and SLURM refuses arrays beyond MaxArraySize (1,001 by default): a larger sweep
    becomes one sweep per value of a swept key (the key with the fewest values that brings every part under
    ``limit``; recursively if none does), each an ordinary multirun with that key fixed on its command line."""
    from .sweeps import sweep_jobs

    jobs = sweep_jobs(sweep.experiment, sweep.overrides)
    if len(jobs) <= limit:
        return [sweep]
    values: dict[str, list[str]] = {}
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            if value not in values.setdefault(key, []):
                values[key].append(value)
    swept = sorted((k for k, v in values.items() if len(v) > 1), key=lambda k: len(values[k]))
    key = next((k for k in swept if math.ceil(len(jobs) / len(values[k])) <= limit), swept[-1])
    parts = [Sweep(f"{sweep.title} [{key}={value}]", sweep.experiment, [*sweep.overrides, f"{key}={value}"])
             for value in values[key]]
    return [piece for part in parts for piece in split_array(part, limit)]


def run_sweeps(label: str, sweeps: list[Sweep], runs_dir: Path, env: dict[str, str] | None = None) -> list[str]:
    """Run every sweep; return the titles of those that did not finish cleanly (a failed job or a refused start)."""
    sweeps = [part for sweep in sweeps
              for part in (split_array(sweep) if "hydra/launcher=slurm" in sweep.overrides else [sweep])]
    failed = []
    with Progress(label, sweeps, runs_dir) as progress:
        for sweep in sweeps:
            print(f"== {sweep.title}", flush=True)
            if subprocess.run(sweep.command(), env=env).returncode != 0:
                failed.append(sweep.title)
            line = progress.line()
            if line:
                print(line, flush=True)
    return failed


def runs_dir_of(overrides: list[str]) -> Path:
    """Where the sweeps write, as bench.train resolves it (LORABENCH_RUNS, paths.runs_dir, or ./runs)."""
    from .sweeps import _compose

    explicit = [o.split("=", 1)[1] for o in overrides if o.startswith("paths.runs_dir=")]
    return Path(explicit[-1] if explicit else _compose([]).paths.runs_dir)
