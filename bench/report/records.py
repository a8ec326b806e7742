"""Run records: finished run directories become compact records (results/<owner>/records/<run>.json, committed),
records become ``Run`` objects, and every record or run that cannot be used is named (``Excluded``), never dropped.
The owner of a run is its ``report.paper``: the name of the spec (a paper or a comparison) whose page it feeds."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import ERROR, METRICS, RESULT, atomic_write_text, is_locked, read_json, record_problem

RECORDS = "records"


@dataclass
class Run:
    path: Path
    status: str                     # ok | failed | incomplete
    result: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    rows: list[dict] | None = None  # metric curves, when read from a compact record

    @property
    def name(self) -> str:
        return self.path.name[:-5] if self.path.suffix == ".json" else self.path.name

    @property
    def experiment(self) -> str | None:
        return self.result.get("experiment")

    @property
    def cfg(self) -> dict:
        return self.result.get("config") or self.config_from_hydra()

    def config_from_hydra(self) -> dict:
        saved = self.path / ".hydra" / "config.yaml"
        if not saved.exists():
            return {}
        from omegaconf import OmegaConf

        try:
            return OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
        except Exception:
            return {}

    @property
    def tags(self) -> tuple[str | None, set[str]]:
        report = self.cfg.get("report") or {}
        return report.get("paper"), {str(t) for t in report.get("tables") or []}

    @property
    def model_name(self) -> str:
        return self.cfg.get("model", {}).get("name", "?")

    @property
    def task_name(self) -> str:
        return self.cfg.get("task", {}).get("name", "?")

    def feeds(self, table: str) -> bool:
        return str(table).lower() in {str(t).lower() for t in self.tags[1]}

    @property
    def scale(self) -> str:
        scale = self.cfg.get("scale") or {}
        return scale.get("name", "?") if isinstance(scale, dict) else str(scale)

    def metrics_rows(self) -> list[dict]:
        if self.rows is not None:
            return self.rows
        path = self.path / METRICS
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        return rows


def write_records(runs: list[Run], out_dir: Path, owners: tuple[str, ...]) -> int:
    """Compact records of finished runs (result.json + metric curves, no checkpoints) into
    results/<owner>/records/<run>.json, so the pages regenerate from a fresh clone without training. The owner is
    the run's report.paper: the name of a paper's spec or of a comparison's."""
    written = 0
    for run in runs:
        paper = run.tags[0]
        if paper not in owners or run.status == "incomplete" or run.result.get("smoke"):
            continue
        result = run.result if run.status == "ok" else {"config": run.cfg}
        record = {"status": run.status, "result": result, "error": run.error, "metrics": run.metrics_rows()}
        atomic_write_text(out_dir / paper / RECORDS / f"{run.path.name}.json",
                          json.dumps(record, sort_keys=True, indent=None, separators=(",", ":")) + "\n")
        written += 1
    return written


@dataclass(frozen=True)
class Excluded:
    """A record or run the report cannot use, and why: named on stderr and on its owner's page, never dropped."""
    path: Path
    reason: str
    owner: str | None = None  # the spec (a paper or a comparison) whose page lists it; None: the index

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


def _owner(result: Any) -> str | None:
    report = ((result or {}).get("config") or {}).get("report") if isinstance(result, dict) else None
    return report.get("paper") if isinstance(report, dict) else None


def load_records(out_dir: Path, paper: str) -> tuple[list[Run], list[Excluded]]:
    runs, excluded = [], []
    for path in sorted((out_dir / paper / RECORDS).glob("*.json")):
        record = read_json(path)
        if not isinstance(record, dict):
            excluded.append(Excluded(path, "unreadable (cut short, or not a JSON object)", paper))
            continue
        status, result, rows = record.get("status", "ok"), record.get("result"), record.get("metrics") or []
        problem = record_problem(status, result, rows)
        if problem:
            excluded.append(Excluded(path, problem, paper))
            continue
        runs.append(Run(path, status, result, record.get("error") or {}, rows=rows))
    return runs, excluded


def collect_runs(runs_dir: Path) -> tuple[list[Run], list[Excluded]]:
    """The runs of a runs directory, and those whose files cannot be used (a damaged result.json, NaN in it, an
    empty curve). A run still training (its lock held) or interrupted is neither: it is not finished yet."""
    runs, excluded = [], []
    records = (".hydra", RESULT, ERROR)
    for run_dir in sorted(p for p in Path(runs_dir).iterdir() if any((p / name).exists() for name in records)):
        if (run_dir / RESULT).exists() and not is_locked(run_dir):
            result = read_json(run_dir / RESULT)
            if not isinstance(result, dict):
                excluded.append(Excluded(run_dir / RESULT, "unreadable (cut short, or not a JSON object)"))
                continue
            if result.get("smoke"):
                continue  # a smoke number says only that the job runs
            run = Run(run_dir, "ok", result)
            problem = record_problem(result.get("status"), result, run.metrics_rows())
            if problem:
                excluded.append(Excluded(run_dir / RESULT, problem, _owner(result)))
            else:
                runs.append(run)
        elif (run_dir / ERROR).exists():
            runs.append(Run(run_dir, "failed", error=read_json(run_dir / ERROR) or {}))
        else:
            runs.append(Run(run_dir, "incomplete"))
    return runs, excluded


def gather(runs_dir: Path, out: Path, owners: list[str], allow_missing: bool) -> tuple[dict[str, list[Run]], list[Excluded], int]:
    """Every owner's usable records (finished runs in ``runs_dir`` first become records), and those that cannot be
    used. Unless ``allow_missing``, any such record stops the report: one line each, exit 1, nothing written."""
    found, excluded = collect_runs(runs_dir) if runs_dir.is_dir() else ([], [])
    synced = write_records(found, out, owners=tuple(owners))
    runs = {}
    for owner in owners:
        runs[owner], more = load_records(out, owner)
        excluded += more
    excluded = [e for e in excluded if e.owner in (*owners, None)]
    if excluded and not allow_missing:
        for e in excluded:
            print(f"error: {e.line()}", file=sys.stderr)
        print(f"error: {len(excluded)} record(s) above cannot be used; nothing was written. Re-run or remove them, or "
              "pass --allow-missing to write the pages without them (each page then lists them)", file=sys.stderr)
        sys.exit(1)
    unfinished = [r.name for r in found if r.status == "incomplete"]
    if unfinished:
        print(f"report: {len(unfinished)} run(s) in {runs_dir} not finished (training now, or interrupted: the same "
              f"training command resumes them), not reported: {', '.join(unfinished[:5])}"
              + (" …" if len(unfinished) > 5 else ""), file=sys.stderr)
    return runs, excluded, synced
