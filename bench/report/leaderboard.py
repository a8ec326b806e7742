"""A comparison spec's page (results/<name>/README.md and leaderboard.csv): per family and budget a board (mean and
95% t-interval over seeds; the best arm in bold, every arm whose paired difference to it spans zero "tied"), the
average rank over families per budget with its bootstrap interval, Pareto plots, and which arm ran where."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import stats
from ..errors import UserError
from ..records import atomic_write_text, read_json
from .claims import fmt_number, metric_of
from .figures import pareto_params, pareto_perf
from .page import describe_code, describe_compute, describe_scales, render_excluded
from .records import gather
from .tables import write_csv


# ------------------------------------------------------------------------------------------ reading runs
# A comparison run names its arm (the conf/arm group) and its budget (compare.budget) in its config (conf/train.yaml).
def arm_of(cfg: dict) -> str | None:
    return cfg.get("arm")


def budget_of(cfg: dict) -> int | None:
    return (cfg.get("compare") or {}).get("budget")


@dataclass
class Cell:
    arm: str
    budget: int | None
    values: dict[int, float]       # seed -> metric
    params: list[int]
    failed: int = 0

    @property
    def mean(self) -> float | None:
        return stats.mean(list(self.values.values())) if self.values else None


def cells_of(spec: Any, family: Any, runs: list) -> dict[tuple[str, int | None], Cell]:
    """(arm, budget) -> Cell from the family's runs; the reference arm's budget is None."""
    cells: dict[tuple[str, int | None], Cell] = {}
    for run in runs:
        cfg = run.cfg
        if not run.feeds(family.key) or arm_of(cfg) is None:
            continue
        arm = arm_of(cfg)
        budget = None if arm == spec.reference else budget_of(cfg)
        cell = cells.setdefault((arm, budget), Cell(arm, budget, {}, []))
        if run.status != "ok":
            cell.failed += run.status == "failed"
            continue
        value = metric_of(run.result, run.metrics_rows(), family.metric)
        if value is not None:
            cell.values[int(cfg.get("seed", 0))] = value
            cell.params.append(int(run.result.get("trainable_params") or 0))
    return cells


def higher_is_better(family: Any) -> bool:
    return family.direction == "greater"


def best_of(family: Any, cells) -> Cell | None:
    """The cell with the best mean (the first of equals), among those with values."""
    best = None
    for c in cells:
        if c.values and (best is None or (c.mean > best.mean if higher_is_better(family) else c.mean < best.mean)):
            best = c
    return best


def average_ranks(spec: Any, families: list, cells_by_family: dict[str, dict], budget: int,
                  seed: int = 0) -> dict[str, tuple[float, float, float, int]]:
    """arm -> (average rank over the families it ran in, bootstrap 2.5%, 97.5%, number of families). Within a family
    the arms with runs at this budget are ranked; the bootstrap resamples each arm's seeds within each family."""
    samples = {}
    for fam in families:
        cells = {arm: c for (arm, b), c in cells_by_family[fam.key].items() if b == budget and c.values}
        if cells:
            samples[fam.key] = {arm: [c.values[s] for s in sorted(c.values)] for arm, c in cells.items()}
    if not samples:
        return {}
    return stats.bootstrap_average_ranks(samples, {f.key: higher_is_better(f) for f in families}, spec.bootstrap, seed)


def budgets_in(cells_by_family: dict) -> list[int]:
    return sorted({b for cells in cells_by_family.values() for (_, b) in cells if b is not None})


# ------------------------------------------------------------------------------------------ the page
def fmt_cell(cell: Cell) -> str:
    if not cell.values:
        return f"failed ({cell.failed} runs)" if cell.failed else "no runs"
    mean, low, high = stats.t_interval(list(cell.values.values()))
    if not math.isfinite(low):
        return f"{fmt_number(mean)} (1 seed)"
    return f"{fmt_number(mean)} ± {fmt_number(high - mean)}"


def board(spec: Any, family: Any, cells: dict, budget: int) -> tuple[list[str], list[dict]]:
    """One family's leaderboard at one budget (the reference arm first, unranked): markdown lines and CSV rows."""
    at_budget = {arm: c for (arm, b), c in cells.items() if b == budget}
    scored = [c for c in at_budget.values() if c.values]
    best = best_of(family, scored)
    ranks = stats.ranks({c.arm: c.mean for c in scored}, higher_is_better(family)) if scored else {}
    order = sorted(at_budget.values(), key=lambda c: (c.mean is None, ranks.get(c.arm, 0.0), c.arm))
    lines = [f"| rank | method | trainable params | {family.unit} (mean ± 95% CI half-width) | seeds | |",
             "|---|---|---|---|---|---|"]
    rows = []
    reference = cells.get((spec.reference, None))
    for c in ([reference] if reference else []) + order:
        is_ref = c.arm == spec.reference
        mark = ("reference (all weights)" if is_ref else "**best**" if c is best
                else "tied" if best is not None and c.values and stats.ties(best.values, c.values) else "")
        label = f"**{spec.arms.get(c.arm, c.arm)}**" if c is best else spec.arms.get(c.arm, c.arm)
        params = f"{int(stats.median(c.params)):,}" if c.params else "–"
        rank = "–" if is_ref or c.arm not in ranks else f"{ranks[c.arm]:g}"
        lines.append(f"| {rank} | {label} | {params} | {fmt_cell(c)} | {len(c.values)} | {mark} |")
        rows.append({"family": family.key, "budget": "all" if is_ref else budget, "arm": c.arm,
                     "trainable_params": params.replace(",", ""), "mean": "" if c.mean is None else f"{c.mean:.6g}",
                     "seeds": len(c.values), "rank": rank, "mark": mark})
    for arm in spec.arms:
        why = spec.not_run_reason(arm, family.key)
        if why and (arm, budget) not in cells:
            lines.append(f"| – | {spec.arms[arm]} | – | not run (why: [Coverage](#coverage)) | 0 | |")
    return lines, rows


def coverage(spec: Any, cells_by_family: dict) -> list[str]:
    """Runs per method × family, or why there are none (each reason written out once, below the table)."""
    families = spec.families
    lines = ["| method | " + " | ".join(f.key for f in families) + " |", "|---|" + "---|" * len(families)]
    for arm, label in spec.arms.items():
        row = []
        for fam in families:
            cells = [c for (a, _), c in cells_by_family[fam.key].items() if a == arm]
            if not cells and spec.not_run_reason(arm, fam.key):
                row.append("not run (below)")
            elif not cells:
                row.append("no runs yet")
            else:
                ok = sum(len(c.values) for c in cells)
                failed = sum(c.failed for c in cells)
                row.append(f"{ok} runs" + (f", {failed} failed" if failed else ""))
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("")
    for (arm, family), why in spec.not_run.items():
        lines.append(f"- {spec.arms[arm]}, {'every family' if family == '*' else family}: {why}.")
    return lines


def _wins(spec: Any, cells_by_family: dict, budgets: list[int]) -> dict[str, int]:
    wins: dict[str, int] = {}
    for fam in spec.families:
        for budget in budgets:
            at_budget = [c for (a, b), c in cells_by_family[fam.key].items() if b == budget and c.values]
            best = best_of(fam, at_budget)
            for c in at_budget:
                if c is best or stats.ties(best.values, c.values):
                    wins[c.arm] = wins.get(c.arm, 0) + 1
    return wins


def headline_of(spec: Any, cells_by_family: dict, budgets: list[int]) -> dict[int, dict]:
    """budget -> arm -> (average rank, bootstrap 2.5%, 97.5%, families)."""
    return {budget: average_ranks(spec, list(spec.families), cells_by_family, budget) for budget in budgets}


def headline_lines(spec: Any, cells_by_family: dict, budgets: list[int], headline: dict[int, dict]) -> list[str]:
    """The average-rank table: one row per arm, best average first (ties by name: a set's order varies by process)."""
    if not budgets:
        return []
    lines = ["| method | " + " | ".join(f"budget {b}: average rank [95% CI]" for b in budgets)
             + " | best or tied (families × budgets) |", "|---|" + "---|" * (len(budgets) + 1)]
    wins = _wins(spec, cells_by_family, budgets)
    arms = sorted({a for b in budgets for a in headline[b]},
                  key=lambda a: (stats.mean([headline[b][a][0] for b in budgets if a in headline[b]]), a))
    for arm in arms:
        parts = [(f"{headline[b][arm][0]:.1f} [{headline[b][arm][1]:.1f}, {headline[b][arm][2]:.1f}]"
                  + ("" if headline[b][arm][3] == len(spec.families) else f" ({headline[b][arm][3]} families)")
                  if arm in headline[b] else "–") for b in budgets]
        lines.append(f"| {spec.arms.get(arm, arm)} | " + " | ".join(parts) + f" | {wins.get(arm, 0)} |")
    return lines


def headline_table(spec: Any, runs: list) -> str:
    """The average-rank table computed from the records (the README's first screen shows a copy of it)."""
    cells_by_family = {f.key: cells_of(spec, f, runs) for f in spec.families}
    budgets = budgets_in(cells_by_family)
    return "\n".join(headline_lines(spec, cells_by_family, budgets, headline_of(spec, cells_by_family, budgets)))


def steps_of(family: Any, runs: list) -> str:
    """The family's training steps, read off its records (not restated beside the experiment file)."""
    steps = sorted({run.result.get("steps") for run in runs if run.status == "ok" and run.feeds(family.key)} - {None})
    return f", {'/'.join(map(str, steps))} steps" if steps else ""


def render(spec: Any, runs: list, out: Path, perf_path: Path = Path("results") / "perf.json",
           excluded: list = ()) -> dict:
    families = list(spec.families)
    cells_by_family = {f.key: cells_of(spec, f, runs) for f in families}
    budgets = budgets_in(cells_by_family)
    head = [f"# {spec.title}", "",
            f"Regenerated by `python -m {spec.cli}` from the run records in [records/](records/); never edited by "
            f"hand. `make {spec.make_target}` trains what is missing first.", ""]
    body, csv_rows = [], []
    headline = headline_of(spec, cells_by_family, budgets)
    head += [f"## {spec.headline}", "",
             "Rank 1 = best within a family and budget among the arms that ran there (ties share the average rank), "
             "averaged over the families an arm ran in; the interval is a bootstrap "
             f"over seeds ({spec.bootstrap} draws, each arm's seeds resampled within each family). {spec.budget_text}",
             ""]
    table = headline_lines(spec, cells_by_family, budgets, headline)
    if table:
        head += table + [""]
    head += ["Tasks (one per paper's family; the CPU tier's stand-ins, labelled as such):", ""]
    head += [f"- **{f.label}** — {f.small}{steps_of(f, runs)}; metric: {f.unit} "
             f"({'higher' if f.direction == 'greater' else 'lower'} is better). Paper scale: {f.paper}." for f in families]
    head += ["", spec.protocol_text, ""]
    head += [f"- {note}" for note in spec.budget_notes]
    head += [f"- {line}" for notes in spec.notes for line in notes(spec, runs)]
    for fam in families:
        body += [f"## {fam.label}", ""]
        for budget in budgets:
            lines, rows = board(spec, fam, cells_by_family[fam.key], budget)
            body += [f"### budget {budget}", ""] + lines + [""]
            csv_rows += rows
    figures = []
    if pareto_params(families, cells_by_family, spec.arms, out / "pareto_params.png"):
        figures.append(("pareto_params.png", "Quality vs trainable parameters (each family; both budgets)"))
    perf = read_json(perf_path) if perf_path.exists() else None
    for axis, title in (("amortised_step_ms", "step time"), ("peak_mem_mb", "peak memory")):
        name = f"pareto_{'step_time' if axis == 'amortised_step_ms' else 'memory'}.png"
        if perf and pareto_perf(headline, perf, axis, title, spec.perf_rows, spec.arms, out / name):
            figures.append((name, f"Average rank vs {title} (bench.perf, r 8, {perf['header'].get('model')})"))
        else:
            (out / name).unlink(missing_ok=True)
    body += ["## Pareto plots", ""] + [f"{caption}:\n\n![{name}]({name})\n" for name, caption in figures]
    body += ["## Coverage", "", *coverage(spec, cells_by_family), ""]
    body += ["## The same grid at paper scale", "", spec.paper_scale_text, ""]
    ok = [r for r in runs if r.status == "ok"]
    body += ["## Scale and compute", "", "; ".join(describe_scales(ok)) or "no runs", "", describe_compute(ok), "",
             describe_code(ok), ""]
    body += render_excluded(list(excluded), heading="##")
    atomic_write_text(out / "README.md", "\n".join(head + [""] + body))
    write_csv(out / "leaderboard.csv", csv_rows)
    return {"budgets": budgets, "headline": headline}


def report(spec: Any, runs_dir: Path, out_root: Path, allow_missing: bool = False) -> dict:
    """results/<name>/ from the spec's records (finished runs in ``runs_dir`` become records first)."""
    owned, excluded, synced = gather(runs_dir, out_root, [spec.name], allow_missing)
    runs = owned[spec.name]
    if not runs:
        raise UserError(f"no comparison records in {out_root / spec.name / 'records'} and none finished in --runs="
                        f"{str(runs_dir)!r}; train first (make {spec.make_target}) — nothing was written")
    summary = render(spec, runs, out_root / spec.name, out_root / "perf.json", excluded)
    print(f"{spec.name}: {out_root / spec.name / 'README.md'} ({len(runs)} records, {synced} new from {runs_dir})")
    return summary
