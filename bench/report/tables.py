"""A published table, reproduced: the paper's layout (rows, columns, every published cell) with the reproduced value
beside the published one, seeds as mean ± std, the winner by the paper's convention in bold; then the same columns
at the scale the runs were made at. What is particular to a paper's tables is its spec's ``TableRules``."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import stats
from ..records import atomic_write_text
from .claims import metric_of, select_setting
from .labels import MODEL_LABELS, method_label, model_cell, model_label, norm, rank_label, setting_cell, setting_of
from .metrics import Reader, metric_value
from .records import Run

UNNAMED_MODEL = "notnamed"  # a published row whose model the paper does not name matches any model
SETTING_NAMES = {"trainer.learning_rate": "lr", "trainer.per_device_train_batch_size": "batch"}


@dataclass(frozen=True)
class TableRules:
    """What a paper's tables mean beyond their layout: all data, or small callables."""
    metrics: Mapping[str, Reader] = field(default_factory=dict)       # published metric name -> reader
    lower_is_better: frozenset[str] = frozenset()                       # the winner of such a column is the lowest
    count_metrics: frozenset[str] = frozenset()                         # large counts: 3 significant digits
    summed_over_seeds: frozenset[str] = frozenset()                     # the paper adds its seeds' values up
    derived_metrics: frozenset[str] = frozenset()                       # the paper computes them from other cells
    column_notes: Mapping[str, str] = field(default_factory=dict)       # metric -> a note under a table that has it
    setting_in_columns: str | None = None                               # published settings with this prefix are columns
    row_labels: tuple[tuple[Callable[[dict], bool], str], ...] = ()     # (method config -> bool, the paper's row name)
    method_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # method name -> the paper's names
    any_rank: Callable[[str, str], bool] | None = None                 # (row method, row rank) -> any rank fills it
    setting_filters: tuple[Callable[[str, Run, bool], bool], ...] = ()  # (row setting, run, by model) -> may fill it
    # A stand-in block's rank, as the rank of the paper's it stands in for (e.g. small r 4 -> "4 (for 256)"): by
    # (experiment base name, rank) or by rank alone, the experiment-specific entry first.
    stand_in_ranks: Mapping[Any, str] = field(default_factory=dict)
    # A column no experiment fills at paper scale, and why: its cells read that instead of "not run" (e.g. "no
    # experiment", "no public data"). Keyed by the paper's task label, or by "<task label>/<metric>" for one column of
    # a task that spans several (MoRA's "continual pretraining/Finance").
    column_status: Mapping[str, str] = field(default_factory=dict)


def column_status(rules: TableRules, ck: tuple) -> str:
    """What an empty cell of column ``ck`` (task, metric, setting) reads: its own status, its task's, or "not run"."""
    return rules.column_status.get(f"{ck[0]}/{ck[1]}", rules.column_status.get(ck[0], "not run"))


def row_method(cfg: dict, rules: TableRules) -> str:
    """The row a run fills: the paper's own name for its configuration, else its method's label."""
    method = cfg.get("method", {})
    for selects, label in rules.row_labels:
        if selects(method):
            return label
    return method_label(cfg)


def fmt(values: list[float], metric: str, rules: TableRules) -> str:
    if not values:
        return ""
    if metric in rules.summed_over_seeds:
        return f"{sum(values):.3g} (sum of {len(values)} seeds)"
    big = metric in rules.count_metrics
    mean, sd = stats.mean_sd(values)
    text = f"{mean:.3g}" if big else f"{mean:.2f}"
    if sd is not None:
        text += f" ± {sd:.2g}" if big else f" ± {sd:.2f}"
    return text


@dataclass
class Layout:
    row_keys: list[tuple]            # (model, method, rank, setting)
    col_keys: list[tuple]            # (task, metric[, setting])
    published: dict[tuple, dict]     # (row, col) -> published row
    setting_in_columns: bool


def layout_of(rows: list[dict], rules: TableRules) -> Layout:
    prefix = rules.setting_in_columns
    setting_in_columns = prefix is not None and any(r["setting"].startswith(prefix) for r in rows)
    row_keys, col_keys, published = [], [], {}
    for r in rows:
        rk = (r["model"], r["method"], r["rank"], "" if setting_in_columns else r["setting"])
        ck = (r["task"], r["metric"], r["setting"] if setting_in_columns else "")
        if rk not in row_keys:
            row_keys.append(rk)
        if ck not in col_keys:
            col_keys.append(ck)
        published[(rk, ck)] = r
    return Layout(row_keys, col_keys, published, setting_in_columns)


def scored_task(run: Run, task_labels: Mapping[str, str], label: str, metric: str = "") -> str | None:
    """The task (registry name) of ``run`` that a column reads: the run's own task or one it scored after training
    (``task.eval_tasks``), whose label is the column's metric (a column "mathematical reasoning" with metric "MATH")
    or else the column's task; None if neither."""
    names = (run.task_name, *(run.result.get("eval_tasks") or {}))
    for wanted in (metric, label):
        for name in names:
            if wanted and norm(task_labels.get(name, "")) == norm(wanted):
                return name
    return None


def run_matches(run: Run, spec: Any, rk: tuple, ck: tuple, *, by_model: bool) -> bool:
    cfg = run.cfg
    rules = spec.tables
    model, method, rank, setting = rk
    task, metric, col_setting = ck
    # A row without a model (the text read does not name one) matches any model, as a "not named" one does.
    if by_model and norm(model) and not norm(model).startswith(UNNAMED_MODEL) \
            and not norm(model).startswith("basemodelnotnamed") and norm(MODEL_LABELS.get(run.model_name, "")) != norm(model):
        return False
    name = cfg.get("method", {}).get("name")
    if norm(method) not in {norm(row_method(cfg, rules)), *map(norm, rules.method_aliases.get(name, ()))}:
        return False
    if rank and rank_label(cfg) != rank and not (rules.any_rank and rules.any_rank(method, rank)):
        return False
    if task and scored_task(run, spec.task_labels, task, metric) is None:
        return False
    return all(setting_may_fill(setting, run, by_model) for setting_may_fill in rules.setting_filters)


def selected_setting(runs: list[Run]) -> tuple[list[Run], str]:
    """Where an experiment searched a grid (``report.select``), the runs of the setting its selection picked
    (claims.select_setting), and that setting in words; other runs pass through."""
    kept, chosen = select_setting(runs, lambda run, expr: metric_of(run.result, run.metrics_rows(), expr),
                                  lambda run: run.cfg)
    words = [", ".join(f"{SETTING_NAMES.get(k, k.split('.')[-1])} {v}" for k, v in zip(select["over"], pick))
             + f" of {n}, by {select['by']}" for select, pick, n in chosen]
    return kept, "; ".join(words)


def cell_values(runs: list[Run], spec: Any, rk: tuple, ck: tuple, by_model: bool) -> tuple[list[float], int, str]:
    """The cell's values over seeds, its failed runs, and the grid setting picked for it (if its experiment searched one)."""
    values, failed = [], 0
    matched, chosen = selected_setting([run for run in runs if run_matches(run, spec, rk, ck, by_model=by_model)])
    for run in matched:
        if run.status != "ok":
            failed += 1
            continue
        task = (scored_task(run, spec.task_labels, ck[0], ck[1]) if ck[0] else None) or run.result.get("task", "")
        value = metric_value(run, spec.tables.metrics, ck[1], task, ck[2] or rk[3])
        if value is not None and math.isfinite(value):
            values.append(float(value))
    return values, failed, chosen


def render_table(spec: Any, layout: Layout, runs: list[Run], scale_runs: list[Run],
                 shown_blocks: dict[frozenset, str] | None = None, name: str = "") -> tuple[str, list[dict]]:
    """Markdown + CSV rows of one table: the published layout with reproduced beside published, then its stand-in
    block, unless the same runs' block is already under another table of the page (``shown_blocks``)."""
    rules = spec.tables

    def derived_metric(ck: tuple) -> bool:
        return ck[1] in rules.derived_metrics

    def col_title(ck):
        task, metric, setting = ck
        return " ".join(x for x in (task, setting, f"({metric})") if x)

    header = "| model | method | rank | setting | " + " | ".join(col_title(c) for c in layout.col_keys) + " |"
    lines = [header, "|" + "---|" * (4 + len(layout.col_keys))]
    csv_rows = []
    best: dict[tuple, float] = {}
    contenders: dict[tuple, int] = defaultdict(int)
    cells: dict[tuple, tuple[list[float], int]] = {}
    for rk in layout.row_keys:
        for ck in layout.col_keys:
            if (rk, ck) in layout.published and not derived_metric(ck):
                cells[(rk, ck)] = cell_values(runs, spec, rk, ck, by_model=True)
    for (rk, ck), (vals, _, _) in cells.items():  # the winner per (model, rank, column), by the paper's convention
        if vals:
            key = (rk[0], rk[2], ck)
            contenders[key] += 1
            mean = stats.mean(vals)
            better = (lambda a, b: a < b) if ck[1] in rules.lower_is_better else (lambda a, b: a > b)
            if key not in best or better(mean, best[key]):
                best[key] = mean
    for rk in layout.row_keys:
        out = []
        for ck in layout.col_keys:
            pub = layout.published.get((rk, ck))
            if pub is None:
                out.append("")
                continue
            published = pub["value"] or ("none printed" if pub["status"] == "not_reported" else "n/a")
            if pub["value"] and pub["std"]:
                published += f" ± {pub['std']}"
            if derived_metric(ck):
                reproduced = "derived"
            else:
                vals, failed, chosen = cells[(rk, ck)]
                reproduced = fmt(vals, ck[1], rules) or ("failed" if failed else column_status(rules, ck))
                if vals and chosen:
                    reproduced += f" [{chosen}]"
                key = (rk[0], rk[2], ck)
                if vals and contenders[key] > 1 and best[key] == stats.mean(vals):
                    reproduced = f"**{reproduced}**"
            out.append(f"{reproduced} / {published}")
            csv_rows.append({"model": rk[0], "method": rk[1], "rank": rk[2], "setting": rk[3] or ck[2], "task": ck[0],
                             "metric": ck[1], "reproduced": reproduced.strip("*"), "published": published,
                             "published_status": pub["status"], "source": pub["source"] or pub["primary_url"]})
        lines.append(f"| {model_cell(rk[0])} | {rk[1]} | {rk[2] or '–'} | {setting_cell(rk[3])} | " + " | ".join(out) + " |")
    md = "\n".join(lines)
    md += "\n\nCells read *reproduced / published*. Reproduced = runs of the paper's own model at scale=paper " \
          "(mean ± std over seeds); \"not run\" = an experiment exists (`make reproduce-<paper> SCALE=paper`) but " \
          "no record of it is here; \"no experiment\" = none exists for that cell, \"no public data\" = its " \
          "data is not public; \"failed\" = its runs failed (see error.json); " \
          "published \"n/a\" = not transcribed (never invented), \"none printed\" = the paper prints \"-\" (no " \
          "result). Winners per the paper's convention in bold."
    for metric, note in rules.column_notes.items():
        if any(ck[1] == metric for ck in layout.col_keys):
            md += "\n\n" + note
    block = frozenset(run.name for run in scale_runs)
    if shown_blocks is not None and block and block in shown_blocks:
        md += f"\n\nIts stand-in runs are those of Table {shown_blocks[block]}: see the block under it."
    else:
        if shown_blocks is not None and block:
            shown_blocks[block] = name
        md += "\n\n" + render_scale_table(spec, layout, scale_runs)
    return md, csv_rows


def render_scale_table(spec: Any, layout: Layout, runs: list[Run]) -> str:
    """The same columns at the scale the runs were made at, one row per (stand-in model, method, rank, setting)."""
    rules, task_labels = spec.tables, spec.task_labels
    if not runs:
        return "_No runs at a smaller scale feed this table yet._"
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:   # one experiment a row: runs of two experiments are never pooled into one cell
        cfg = run.cfg
        groups[(run.experiment or "–", model_label(run.model_name), row_method(cfg, rules), stand_in_rank(run, rules),
                setting_of(cfg))].append(run)
    cols = [ck for ck in layout.col_keys if ck[1] not in rules.derived_metrics]
    task_of = {ck: ck[0] for ck in cols}
    # A stand-in task none of the paper's columns names (the corpus standing in for GLUE) gets its own eval-loss
    # column, so the rows it feeds are not empty.
    shown = {norm(task) for task in task_of.values() if task}
    for name in sorted({run.task_name for run in runs if run.status == "ok" and "eval_loss" in run.result.get("metrics", {})}):
        if norm(task_labels.get(name, "")) not in shown:
            ck = (f"{name} (stand-in task)", "eval_loss", "")
            cols.append(ck)
            task_of[ck] = task_labels.get(name) or name
    lines = [f"At scale={runs[0].scale} (stand-in models; read against each other, not against the paper's numbers):", "",
             "| experiment | model | method | rank | setting | "
             + " | ".join(" ".join(x for x in (c[0], c[2], f'({c[1]})') if x) for c in cols) + " |",
             "|" + "---|" * (5 + len(cols))]
    for key in sorted(groups):
        experiment, model, method, rank, setting = key
        out = []
        for ck in cols:
            vals, failed = [], 0
            for run in groups[key]:
                label = task_labels.get(run.task_name) or run.task_name
                scored = scored_task(run, task_labels, task_of[ck], ck[1]) if task_of[ck] else None
                if task_of[ck] and norm(label) != norm(task_of[ck]) and scored is None:
                    continue
                if run.status != "ok":
                    failed += 1
                    continue
                v = metric_value(run, rules.metrics, ck[1], scored or "", ck[2] or setting)
                if v is not None and math.isfinite(v):
                    vals.append(float(v))
            out.append(fmt(vals, ck[1], rules) or ("failed" if failed else "–"))
        if any(o != "–" for o in out):
            lines.append(f"| {experiment} | {model} | {method} | {rank} | {setting or '–'} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def stand_in_rank(run: Run, rules: TableRules) -> str:
    """A stand-in run's rank, with the paper's rank it stands in for where the spec maps it."""
    rank = rank_label(run.cfg)
    base = (run.experiment or "").rsplit("_", 1)[0]
    paper_rank = rules.stand_in_ranks.get((base, rank), rules.stand_in_ranks.get(rank))
    return f"{rank} (for {paper_rank})" if paper_rank else rank


def runs_for(runs: list[Run], paper: str, table: str) -> list[Run]:
    return [r for r in runs if r.tags[0] == paper and r.feeds(table)]


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
