"""A comparison spec's page (results/<name>/README.md and leaderboard.csv): per family and budget a board (mean and
95% t-interval over seeds; the best arm in bold, every arm whose paired difference to it spans zero "tied"), the
average rank over families per budget with its bootstrap interval, Pareto plots, and which arm ran where."""

from __future__ import annotations

import math
from collections import Counter
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
    empty: str = ""                # what an empty cell says (the tuned board's: tuning pending, final not run)

    @property
    def mean(self) -> float | None:
        return stats.mean(list(self.values.values())) if self.values else None


def cells_of(spec: Any, family: Any, runs: list, chosen: dict | None = None) -> dict[tuple[str, int | None], Cell]:
    """(arm, budget) -> Cell from the family's board runs (bench/report/tuning.py board_runs: never a tuning run;
    with a tuning stage, the one-rate board's at the family's own setting, or, given ``chosen``, each cell's runs at
    its chosen setting); the reference arm's budget is None. A chosen cell without runs yet is an empty Cell saying
    why."""
    from .tuning import board_runs

    cells: dict[tuple[str, int | None], Cell] = {}
    if chosen is not None:
        for (arm, budget), choice in chosen.items():
            why = {"pending": "tuning not finished", "failed": "every tuning point failed"}.get(choice.status,
                                                                                             "final runs not run yet")
            cells[(arm, budget)] = Cell(arm, budget, {}, [], empty=why)
    for run in board_runs(spec, family, runs, chosen):
        cfg = run.cfg
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
        return f"failed ({cell.failed} runs)" if cell.failed else (cell.empty or "no runs")
    mean, low, high = stats.t_interval(list(cell.values.values()))
    if not math.isfinite(low):
        return f"{fmt_number(mean)} (1 seed)"
    return f"{fmt_number(mean)} ± {fmt_number(high - mean)}"


def board(spec: Any, family: Any, cells: dict, budget: int, view: str = "one-rate") -> tuple[list[str], list[dict]]:
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
        rows.append({"board": view, "family": family.key, "budget": "all" if is_ref else budget, "arm": c.arm,
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


@dataclass
class Views:
    """The boards a comparison's page shows: the one-rate board (each family's arms at its shared setting) and,
    with a tuning stage, the tuned board (each arm at its chosen setting) and the choices behind it."""
    one: dict[str, dict]                       # family key -> (arm, budget) -> Cell
    budgets: list[int]
    tier: str | None = None                    # the tier the tuning stage ran at
    chosen: dict[str, dict] | None = None      # family key -> (arm, budget) -> tuning.Choice
    tuned: dict[str, dict] | None = None       # family key -> (arm, budget) -> Cell

    @property
    def tuned_complete(self) -> bool:
        """Every cell of the one-rate board has a choice and as many final seeds at it as the one-rate cell has."""
        if self.tuned is None:
            return False
        return all((key in self.tuned[fam] and len(self.tuned[fam][key].values) >= len(cell.values))
                   for fam, cells in self.one.items() for key, cell in cells.items() if cell.values)

    @property
    def headline_cells(self) -> dict[str, dict]:
        return self.tuned if self.tuned_complete else self.one


def views_of(spec: Any, runs: list) -> Views:
    one = {f.key: cells_of(spec, f, runs) for f in spec.families}
    budgets = budgets_in(one)
    if spec.tuning is None:
        return Views(one, budgets)
    from .tuning import choices_of

    tier = spec.tuning.tiers[0]
    chosen = choices_of(spec, tier, runs)
    tuned = {f.key: cells_of(spec, f, runs, chosen[f.key]) for f in spec.families}
    return Views(one, budgets, tier, chosen, tuned)


def headline_table(spec: Any, runs: list) -> str:
    """The page's average-rank table computed from the records (the README's first screen shows a copy of it): the
    tuned board's once it is complete, the one-rate board's until then."""
    views = views_of(spec, runs)
    cells = views.headline_cells
    return "\n".join(headline_lines(spec, cells, views.budgets, headline_of(spec, cells, views.budgets)))


def steps_of(family: Any, runs: list) -> str:
    """The family's training steps, read off its records (not restated beside the experiment file)."""
    steps = sorted({run.result.get("steps") for run in runs if run.status == "ok" and run.feeds(family.key)} - {None})
    return f", {'/'.join(map(str, steps))} steps" if steps else ""


def boards(spec: Any, cells_by_family: dict, budgets: list[int], view: str, level: str) -> tuple[list[str], list[dict]]:
    """Every family's board at every budget: markdown (family headings at ``level``) and CSV rows."""
    lines, csv_rows = [], []
    for fam in spec.families:
        lines += [f"{level} {fam.label}", ""]
        for budget in budgets:
            board_lines, rows = board(spec, fam, cells_by_family[fam.key], budget, view)
            lines += [f"{level}# budget {budget}", ""] + board_lines + [""]
            csv_rows += rows
    return lines, csv_rows


# ------------------------------------------------------------------------------------------ the tuning stage
def chosen_lines(spec: Any, views: Views) -> list[str]:
    """Per arm, the setting each family and budget chose (own: the family's own setting; beyond: the point past the
    stated grid's edge; edge: the lowest or highest rate the cell tried), with the family's own rate, its grid and
    its points beyond above the table."""
    from .tuning import fmt_setting, fmt_value, grid_of, shared_setting

    grids = grid_of(spec, views.tier)
    columns = [(fam, b) for fam in spec.families for b in views.budgets]
    lines = []
    for fam in spec.families:
        rates = sorted({dict(p)[spec.tuning.rate_key] for points in grids[fam.key].values() for p in points})
        own = dict(shared_setting(spec, fam, views.tier, spec.reference))[spec.tuning.rate_key]
        beyond = Counter(dict(c.extension)[spec.tuning.rate_key] for c in views.chosen[fam.key].values()
                         if c.extension is not None)
        lines.append(f"- {fam.key}: own rate {fmt_value(own)}; grid {', '.join(fmt_value(r) for r in rates)}"
                     + "".join(f"; {arm} also {key} ∈ {{{', '.join(fmt_value(v) for v in values)}}}"
                               for arm, (key, values) in spec.tuning.searched.items())
                     + ("; beyond an edge: " + ", ".join(f"{fmt_value(r)} ({n} cell{'s' if n > 1 else ''})"
                                                          for r, n in sorted(beyond.items())) if beyond else "")
                     + ".")
    lines += ["", "| method | " + " | ".join(f"{f.key} {'all' if b is None else f'b{b}'}" for f, b in columns)
              + " | moved |", "|---|" + "---|" * (len(columns) + 1)]
    for arm, label in spec.arms.items():
        row, moved, any_cell = [], 0, False
        for fam, budget in columns:
            choice = views.chosen[fam.key].get((arm, None if arm == spec.reference else budget))
            if choice is None:
                row.append("–")
                continue
            any_cell = True
            if choice.status != "chosen":
                row.append(choice.status)
                continue
            moved += choice.moved
            row.append(fmt_setting(spec, choice.setting) + ("" if choice.moved else " (own)")
                       + (" (beyond)" if choice.chose_extension else "") + (" (edge)" if choice.edge else ""))
        if any_cell:
            lines.append(f"| {label} | " + " | ".join(row) + f" | {moved} |")
    return lines


def moved_lines(spec: Any, views: Views) -> list[str]:
    """Average rank on the one-rate board and on the tuned board, over the same cells, and how far each arm moved."""
    from .tuning import rank_moves

    moves = {b: rank_moves(spec, views.one, views.tuned, b) for b in views.budgets}
    if not any(moves.values()):
        return ["No family has two arms with final seeds on both boards yet: no rank has moved."]
    lines = ["| method | " + " | ".join(f"budget {b}: one rate → tuned (moved up)" for b in views.budgets) + " |",
             "|---|" + "---|" * len(views.budgets)]
    arms = sorted({a for b in views.budgets for a in moves[b]},
                  key=lambda a: (stats.mean([moves[b][a][1] for b in views.budgets if a in moves[b]]), a))
    for arm in arms:
        parts = [(f"{moves[b][arm][0]:.1f} → {moves[b][arm][1]:.1f} ({moves[b][arm][0] - moves[b][arm][1]:+.1f})"
                  + ("" if moves[b][arm][2] == len(spec.families) else f" ({moves[b][arm][2]} families)")
                  if arm in moves[b] else "–") for b in views.budgets]
        lines.append(f"| {spec.arms.get(arm, arm)} | " + " | ".join(parts) + " |")
    return lines


def tuning_rows(spec: Any, views: Views) -> list[dict]:
    """tuning.csv: every grid point of every cell, its validation criterion over the tuning seeds, and the choice."""
    from .tuning import fmt_setting, same

    rows = []
    for fam in spec.families:
        for (arm, budget), choice in sorted(views.chosen[fam.key].items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            for point in choice.points:
                rows.append({"family": fam.key, "budget": "all" if budget is None else budget, "arm": arm,
                             "setting": fmt_setting(spec, point.setting),
                             "own": "yes" if same(point.setting, choice.shared) else "",
                             "beyond_grid": "yes" if same(point.setting, choice.extension) else "",
                             "tuning_seeds": " ".join(str(s) for s in sorted(point.values)),
                             "failed_seeds": " ".join(str(s) for s in point.failed),
                             "validation_mean": "" if point.mean is None else f"{point.mean:.6g}",
                             "status": choice.status,
                             "chosen": "yes" if choice.status == "chosen" and same(point.setting, choice.setting)
                             else ""})
    return rows


def tuning_section(spec: Any, runs: list, views: Views) -> list[str]:
    tuning = spec.tuning
    counts: dict[str, int] = {}
    for cells in views.chosen.values():
        for choice in cells.values():
            counts[choice.status] = counts.get(choice.status, 0) + 1
    every = [c for cells in views.chosen.values() for c in cells.values()]
    moved, edge = sum(c.moved for c in every), sum(c.edge for c in every)
    extended = [c for c in every if c.extension is not None]
    beyond = ""
    if tuning.extend_edges:
        waiting = sum(c.status == "pending" for c in extended)
        beyond = (f"; {len(extended)} chose an edge of the stated grid and tried the point beyond it, of which "
                  f"{sum(c.chose_extension for c in extended)} chose that point"
                  + (f" and {waiting} wait for its run" if waiting else ""))
    seeds = tuning.seeds[tuning.stage]
    lines = ["## How each arm was tuned", "",
             f"At the {views.tier} tier each arm of each family and budget (the reference arm too) picks its setting "
             f"from a grid: {tuning.grid_text} {tuning.criterion_text} The {tuning.stage} stage runs here: "
             f"{tuning.stage_text[tuning.stage]} (tuning seed{'s' if len(seeds) > 1 else ''} "
             f"{', '.join(map(str, seeds))}; the final seeds are the one-rate grid's, and a tuning seed is never one "
             "of them). The final seeds then run at the chosen setting and are scored on the test split, as the "
             "one-rate grid's; where the choice is the family's own setting, the final runs are the one-rate grid's "
             "runs themselves. Every grid point's validation criterion: [tuning.csv](tuning.csv).", "",
             f"Cells: {sum(counts.values())}; chosen {counts.get('chosen', 0)} ({moved} away from the family's own "
             f"setting, {edge} at an edge of the grid, where the best may lie beyond it), still tuning "
             f"{counts.get('pending', 0)}, every point failed {counts.get('failed', 0)}{beyond}.", "",
             "### Chosen settings", ""]
    lines += chosen_lines(spec, views) + [""]
    lines += ["### How ranks moved", "",
              "Average rank over the families on the one-rate board and on the tuned board, both over the same "
              "cells (the arms with final seeds on both boards in a family); positive: the arm moved up once "
              "tuned.", ""]
    lines += moved_lines(spec, views) + [""]
    return lines


def compute_lines(spec: Any, runs: list, tier: str) -> list[str]:
    """What `make compare` has run and has still to run, per stage, from the records' wall time, with an estimate
    for each job not run yet (the mean wall time of its family, arm and budget on the one-rate board); and what each
    tuning stage costs from scratch against the time budget."""
    from .tuning import _job_keys, seconds_per_cell, stage_costs

    tuning = spec.tuning
    per = tuning.jobs_at_once
    costs = stage_costs(spec, tier, runs)
    labels = {"grid": "one-rate grid", "tuning": f"tuning, {tuning.stage} stage",
              "extension": "tuning, the points beyond an edge", "final": "final stage"}
    lines = [f"Stages at the {tier} tier, from the records' wall time (`wall_s`; run-minutes, the sum over runs); "
             "a job not run yet is estimated by the mean wall time of its family, arm and budget on the one-rate "
             "board:", ""]
    for name in ("grid", "tuning", "extension", "final"):
        c = costs[name]
        line = f"- {labels[name]}: {c.jobs} jobs, {c.done} done ({c.done_s / 60:.1f} run-min)"
        if c.todo:
            line += f", {c.todo} to run (≈ {c.todo_s / 60:.1f} run-min)"
        if name == "extension" and not c.jobs:
            line += " — none asked for yet"
        if name == "final":
            line += (" — the jobs the tuning records ask for so far" if c.jobs else " — none asked for yet")
            pending = costs["pending"]
            if pending.jobs:
                line += (f"; the cells still tuning add up to {pending.jobs} more (≈ {pending.todo_s / 60:.1f} "
                         "run-min, if every one of them moved)")
        lines.append(line + ".")
    todo_s = sum(costs[n].todo_s for n in ("grid", "tuning", "extension", "final", "pending"))
    lines += ["", f"Still to run: ≈ {todo_s / 60:.1f} run-min, ≈ {todo_s / 60 / per:.0f} min at {per} jobs at a time "
              f"on {per} cores (run-minutes ÷ {per}: a lower bound).", ""]
    estimate = seconds_per_cell(spec, runs)
    grid_keys = _job_keys(spec, tier, spec.grid_plan(tier), "board")
    finals_s = sum(estimate(k[0], k[2], k[3]) or 0.0 for k in grid_keys)   # every cell moved: its final seeds again
    cells = {(k[0], k[2], k[3]) for k in grid_keys}
    for stage, seeds in tuning.seeds.items():
        keys = _job_keys(spec, tier, spec.tuning_plan(tier, stage), "tuning")
        tune_s = sum(estimate(k[0], k[2], k[3]) or 0.0 for k in keys)
        # every cell at an edge: one point beyond per tuning seed (an upper bound)
        beyond_seeds = len(seeds) if tuning.extend_edges else 0
        beyond_n = len(cells) * beyond_seeds
        beyond_s = sum(estimate(*cell) or 0.0 for cell in cells) * beyond_seeds
        total_min = (tune_s + beyond_s + finals_s) / 60 / per
        verdict = "within" if total_min <= tuning.budget_minutes else "over"
        lines.append(f"- The {stage} stage from scratch (tuning seed{'s' if len(seeds) > 1 else ''} "
                     f"{', '.join(map(str, seeds))}): {len(keys)} tuning jobs ≈ {tune_s / 60:.0f} run-min, "
                     + (f"at most {beyond_n} points beyond an edge ≈ {beyond_s / 60:.0f} run-min (every cell at an "
                        "edge), " if tuning.extend_edges else "")
                     + f"and at most {len(grid_keys)} final jobs ≈ {finals_s / 60:.0f} run-min (every cell moved): ≈ "
                     f"{total_min:.0f} min at {per} jobs at a time, {verdict} the {tuning.budget_minutes / 60:g}-hour "
                     f"budget{' (the stage `make compare` runs)' if stage == tuning.stage else ''}.")
    return lines + [""]


def render(spec: Any, runs: list, out: Path, perf_path: Path = Path("results") / "perf.json",
           excluded: list = ()) -> dict:
    families = list(spec.families)
    views = views_of(spec, runs)
    budgets = views.budgets
    tuned_headline = views.tuned_complete
    cells_by_family = views.headline_cells
    head = [f"# {spec.title}", "",
            f"Regenerated by `python -m {spec.cli}` from the run records in [records/](records/); never edited by "
            f"hand. `make {spec.make_target}` trains what is missing first.", ""]
    body, csv_rows = [], []
    headline = headline_of(spec, cells_by_family, budgets)
    which = ""
    if spec.tuning is not None:
        which = (" The board is the tuned one: each arm at the setting its validation split chose "
                 "([How each arm was tuned](#how-each-arm-was-tuned)); the one-rate board is the second view below."
                 if tuned_headline else
                 " This is the one-rate board (every arm of a family at the family's own learning rate): the tuned "
                 "board is not complete yet ([How each arm was tuned](#how-each-arm-was-tuned)).")
    head += [f"## {spec.headline}", "",
             "Rank 1 = best within a family and budget among the arms that ran there (ties share the average rank), "
             "averaged over the families an arm ran in; the interval is a bootstrap "
             f"over seeds ({spec.bootstrap} draws, each arm's seeds resampled within each family). {spec.budget_text}"
             + which, ""]
    table = headline_lines(spec, cells_by_family, budgets, headline)
    if table:
        head += table + [""]
    head += ["Tasks (one per paper's family; the CPU tier's stand-ins, labelled as such):", ""]
    head += [f"- **{f.label}** — {f.small}{steps_of(f, runs)}; metric: {f.unit} "
             f"({'higher' if f.direction == 'greater' else 'lower'} is better). Paper scale: {f.paper}." for f in families]
    head += ["", spec.protocol_text, ""]
    head += [f"- {note}" for note in spec.budget_notes]
    head += [f"- {line}" for notes in spec.notes for line in notes(spec, runs)]
    if spec.tuning is not None:
        body += tuning_section(spec, runs, views)
        tuned_any = any(c.values for cells in views.tuned.values() for c in cells.values())
        body += ["## The tuned boards", ""]
        if tuned_any:
            lines, rows = boards(spec, views.tuned, budgets, "tuned", "###")
            body += lines
            csv_rows += rows
        else:
            body += ["No final run at a chosen setting yet (the tuning stage has not run): every cell reads "
                     "\"tuning not finished\" until it has.", ""]
        body += ["## One shared learning rate per family (the second view)", "",
                 "Every arm of a family at the family's own learning rate (LoRA+ at its method's ratio), untuned per "
                 "method: the board this comparison first published.", ""]
        if tuned_headline:
            one_headline = headline_of(spec, views.one, budgets)
            body += headline_lines(spec, views.one, budgets, one_headline) + [""]
        lines, rows = boards(spec, views.one, budgets, "one-rate", "###")
    else:
        lines, rows = boards(spec, views.one, budgets, "one-rate", "##")
    body += lines
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
    board_name = "" if spec.tuning is None else (" (the tuned board)" if tuned_headline else " (the one-rate board)")
    body += [f"## Pareto plots{board_name}", ""] + [f"{caption}:\n\n![{name}]({name})\n" for name, caption in figures]
    body += ["## Coverage", "", *coverage(spec, views.one), ""]
    body += ["## The same grid at paper scale", "", spec.paper_scale_text, ""]
    ok = [r for r in runs if r.status == "ok"]
    body += ["## Scale and compute", "", "; ".join(describe_scales(ok)) or "no runs", "", describe_compute(ok), ""]
    if spec.tuning is not None:
        body += compute_lines(spec, runs, views.tier)
    body += [describe_code(ok), ""]
    body += render_excluded(list(excluded), heading="##")
    atomic_write_text(out / "README.md", "\n".join(head + [""] + body))
    write_csv(out / "leaderboard.csv", csv_rows)
    if spec.tuning is not None:
        write_csv(out / "tuning.csv", tuning_rows(spec, views))
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
