"""bench.compare's Pareto plots (matplotlib PNGs, byte-identical from the same records)."""

from __future__ import annotations

import statistics
from pathlib import Path

from .report_figures import _save, plt

MARKERS = "os^vD<>pP*hXd8H+x|_"


def _frontier(points: list[tuple[float, float]], higher_is_better: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (x: lower is better; y: per ``higher_is_better``)."""
    front, best = [], None
    for x, y in sorted(points, key=lambda p: (p[0], -p[1] if higher_is_better else p[1])):
        if best is None or (y > best if higher_is_better else y < best):
            front.append((x, y))
            best = y
    return front


def _marker(arms: dict, arm: str) -> str:
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
            x, y = statistics.median(cell.params), cell.mean
            points.append((x, y))
            ax.scatter([x], [y], marker=_marker(arms, arm), s=28 if budget is None or budget > 2 else 16,
                       label=arms.get(arm, arm) if budget == max(b for (_, b) in cells_by_family[fam.key] if b)
                       or budget is None else None)
        front = _frontier(points, fam.direction == "greater")
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(fam.label, fontsize=9)
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(fam.unit)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(10, len(labels)), fontsize=7)
    fig.subplots_adjust(bottom=0.25)
    fig.suptitle("Quality vs trainable parameters (small markers: the lower budget; dashed: Pareto frontier)",
                 fontsize=10)
    return _save(fig, path)


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
            ax.errorbar([x], [rank], yerr=[[rank - low], [high - rank]], fmt=_marker(arms, arm), ms=5, capsize=2)
            ax.annotate(arms.get(arm, arm), (x, rank), fontsize=6, xytext=(3, 2), textcoords="offset points")
            drawn = True
        front = _frontier(points, True)
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
    return _save(fig, path)
