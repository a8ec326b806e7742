"""Drawing helpers the specs' figures are made of (matplotlib PNGs, byte-identical from the same records): a run's
logged series, seed bands, curves per panel (``Curves``: a figure as data), and the comparison's Pareto plots.
A paper's own figure is a callable in its spec, ``(runs, path) -> bool``: False when no run draws it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, and the same bytes on every host
import matplotlib.pyplot as plt  # noqa: E402

from .. import stats  # noqa: E402
from .labels import natural_key, run_label  # noqa: E402

MARKERS = "os^vD<>pP*hXd8H+x|_"


def tagged(runs, table: str):
    """The runs whose experiment lists ``table`` (a figure's name, e.g. "fig2") under report.tables."""
    return [r for r in runs if r.feeds(table)]


def series(run, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in run.metrics_rows() if key in r and "step" in r]
    seen: dict[int, float] = {}
    for r in rows:
        seen[int(r["step"])] = float(r[key])
    steps = sorted(seen)
    return steps, [seen[s] for s in steps]


def save(fig, path: Path) -> bool:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, metadata={"Software": None})  # no version/date stamp: byte-identical regeneration
    plt.close(fig)
    tmp.replace(path)
    return True


def band(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over seeds; a single seed is a line without a band."""
    mean, low, high = stats.t_interval(values)
    return (mean, low, high) if len(values) > 1 else (mean, mean, mean)


def final(run, key: str) -> float | None:
    value = run.result.get("metrics", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def mean_present(values) -> float | None:
    """The mean of the values a run had (None skipped); None if there are none."""
    values = [v for v in values if v is not None]
    return stats.mean(values) if values else None


def curves(runs, key: str, group: Callable, path: Path, title: str, ylabel: str) -> bool:
    """One panel per group, one line per method/rank (seeds averaged step-wise)."""
    panels: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        steps, values = series(run, key)
        if steps:
            panels[group(run)][run_label(run.cfg)].append(dict(zip(steps, values)))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (name, lines) in zip(axes[0], sorted(panels.items())):
        for label, seeds in sorted(lines.items(), key=lambda item: natural_key(item[0])):
            steps = sorted(set.intersection(*(set(s) for s in seeds)))
            bands = [band([s[t] for s in seeds]) for t in steps]
            line, = ax.plot(steps, [b[0] for b in bands], marker=".", label=f"{label} (n={len(seeds)})")
            if len(seeds) > 1:  # the 95% t-interval over seeds, step by step
                ax.fill_between(steps, [b[1] for b in bands], [b[2] for b in bands], color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


@dataclass(frozen=True)
class Curves:
    """A figure as data: the runs tagged ``table``, the logged ``key`` over steps, one panel per ``panel(run)``."""
    table: str
    key: str
    panel: Callable
    title: str
    ylabel: str

    def __call__(self, runs, path: Path) -> bool:
        return curves(tagged(runs, self.table), self.key, self.panel, path, self.title, self.ylabel)


# ------------------------------------------------------------------------------------------ Pareto plots
def frontier(points: list[tuple[float, float]], higher_is_better: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (x: lower is better; y: per ``higher_is_better``)."""
    front, best = [], None
    for x, y in sorted(points, key=lambda p: (p[0], -p[1] if higher_is_better else p[1])):
        if best is None or (y > best if higher_is_better else y < best):
            front.append((x, y))
            best = y
    return front


def marker(arms: dict, arm: str) -> str:
    return MARKERS[list(arms).index(arm) % len(MARKERS)] if arm in arms else "o"


def pareto_params(families, cells_by_family: dict, arms: dict, path: Path) -> bool:
    """One panel per family: each arm × budget at (median trainable parameters, mean metric); frontier dashed."""
    if not any(c.values for cells in cells_by_family.values() for c in cells.values()):
        return False
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 4.2))
    for ax, fam in zip(axes, families):
        points = []
        for (arm, budget), cell in sorted(cells_by_family[fam.key].items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            if not cell.values or not cell.params:
                continue
            x, y = stats.median(cell.params), cell.mean
            points.append((x, y))
            ax.scatter([x], [y], marker=marker(arms, arm), s=28 if budget is None or budget > 2 else 16,
                       label=arms.get(arm, arm) if budget == max((b for (_, b), c in cells_by_family[fam.key].items()
                                                                  if b and c.values), default=None)
                       or budget is None else None)
        front = frontier(points, fam.direction == "greater")
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(fam.label, fontsize=9)
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(fam.unit)
    handles, labels = axes[0].get_legend_handles_labels()
    if labels:   # a board whose first family has no runs yet (the tuned board's) has no legend to draw
        fig.legend(handles, labels, loc="lower center", ncol=min(10, len(labels)), fontsize=7)
    fig.subplots_adjust(bottom=0.25)
    fig.suptitle("Quality vs trainable parameters (small markers: the lower budget; dashed: Pareto frontier)",
                 fontsize=10)
    return save(fig, path)


def pareto_perf(headline: dict, perf: dict, axis: str, title: str, perf_rows: dict, arms: dict, path: Path) -> bool:
    """Average rank over families (each budget) against bench.perf's measurement of the arm at r 8."""
    rows = {row["row"]: row for row in (perf.get("ranks") or {}).get("8", [])}

    def perf_row(arm: str):
        name = perf_rows.get(arm, arm)
        return rows.get(name) or next((r for n, r in rows.items() if n.split(" (")[0] == name), None)

    budgets = sorted(headline)
    if not budgets or not any(headline[b] for b in budgets):
        return False
    fig, axes = plt.subplots(1, len(budgets), figsize=(5.5 * len(budgets), 4.5), squeeze=False)
    drawn = False
    for ax, budget in zip(axes[0], budgets):
        points = []
        for arm, (rank, low, high, _) in sorted(headline[budget].items()):
            row = perf_row(arm)
            if row is None or row.get(axis) is None:
                continue
            x = float(row[axis])
            points.append((x, -rank))
            ax.errorbar([x], [rank], yerr=[[rank - low], [high - rank]], fmt=marker(arms, arm), ms=5, capsize=2)
            ax.annotate(arms.get(arm, arm), (x, rank), fontsize=6, xytext=(3, 2), textcoords="offset points")
            drawn = True
        front = frontier(points, True)
        if front:
            ax.plot([p[0] for p in front], [-p[1] for p in front], "k--", lw=0.8)
        ax.invert_yaxis()
        ax.set_title(f"budget {budget}", fontsize=9)
        ax.set_xlabel(f"{title} ({'ms per step' if axis == 'amortised_step_ms' else 'MB'}, bench.perf r 8)")
        ax.set_ylabel("average rank over families (1 = best)")
    if not drawn:
        plt.close(fig)
        return False
    fig.suptitle(f"Average rank vs {title} (dashed: Pareto frontier; bars: bootstrap 95% interval)", fontsize=10)
    return save(fig, path)
