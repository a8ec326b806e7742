"""The papers' figures (matplotlib PNGs) from run records; the paper specs (bench/papers) say which to draw."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

def _tagged(runs, table: str):
    return [r for r in runs if r.feeds(table)]


def _label(run) -> str:
    from .report import method_label, rank_label

    return f"{method_label(run.cfg)} r{rank_label(run.cfg)}"


def _series(run, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in run.metrics_rows() if key in r and "step" in r]
    seen: dict[int, float] = {}
    for r in rows:
        seen[int(r["step"])] = float(r[key])
    steps = sorted(seen)
    return steps, [seen[s] for s in steps]


def _save(fig, path: Path) -> bool:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, metadata={"Software": None})  # no version/date stamp: byte-identical regeneration
    plt.close(fig)
    tmp.replace(path)
    return True


def _curves(runs, key: str, group: Callable, path: Path, title: str, ylabel: str) -> bool:
    """One panel per group, one line per method/rank (seeds averaged step-wise)."""
    panels: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        steps, values = _series(run, key)
        if steps:
            panels[group(run)][_label(run)].append(dict(zip(steps, values)))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (name, lines) in zip(axes[0], sorted(panels.items())):
        for label, seeds in sorted(lines.items()):
            steps = sorted(set.intersection(*(set(s) for s in seeds)))
            bands = [_band([s[t] for s in seeds]) for t in steps]
            line, = ax.plot(steps, [b[0] for b in bands], marker=".", label=f"{label} (n={len(seeds)})")
            if len(seeds) > 1:  # the 95% t-interval over seeds, step by step
                ax.fill_between(steps, [b[1] for b in bands], [b[2] for b in bands], color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _band(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over seeds; a single seed is a line without a band."""
    from .stats import t_interval

    mean, low, high = t_interval(values)
    return (mean, low, high) if len(values) > 1 else (mean, mean, mean)


def _final(run, key: str) -> float | None:
    value = run.result.get("metrics", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


# --------------------------------------------------------------------------------------------- OLoRA
def olora_fig2(runs, path):
    return _curves(_tagged(runs, "fig2"), "eval_loss", lambda r: f"{r.model_name}, r {r.cfg['method']['r']}", path,
                   "OLoRA Figs. 2-3: eval loss, LoRA vs OLoRA", "eval loss")


# --------------------------------------------------------------------------------------------- COLA
def cola_fig2(runs, path):
    chain = defaultdict(lambda: defaultdict(list))
    for run in _tagged(runs, "fig2"):
        m = run.cfg["method"]
        if m.get("ranks") and len(set(m["ranks"])) > 1:
            continue
        chain[run.task_name][len(m.get("knots") or []) + 1].append(_final(run, "acc"))
    if not chain:
        return False
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for task, by_len in sorted(chain.items()):
        lengths = sorted(by_len)
        bands = [_band([100 * v for v in by_len[n] if v is not None]) for n in lengths]
        seeds = min(len(by_len[n]) for n in lengths)
        ax.errorbar(lengths, [b[0] for b in bands], yerr=[[b[0] - b[1] for b in bands], [b[2] - b[0] for b in bands]],
                    marker="o", capsize=3, label=f"{task} (n={seeds} seeds, 95% CI)")
    ax.set_xlabel("chain length")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks([1, 2, 3])
    ax.legend(fontsize=8)
    ax.set_title("COLA Fig. 2: accuracy vs chain length", fontsize=10)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------- SaLoRA
def _salora_gated_runs(runs, table: str):
    return [r for r in _tagged(runs, table) if r.cfg["method"]["name"] == "salora"
            and r.cfg["method"].get("use_lagrangian", True)]


def _salora_window_run(runs, table: str = "1"):
    """The SaLoRA run at b 0.5 (the paper's setting), on SST-2 if there is one, lowest seed first."""
    candidates = _salora_gated_runs(runs, table)
    key = lambda r: (r.task_name != "sst2", abs(float(r.cfg["method"]["target_density"]) - 0.5), r.cfg.get("seed", 0), str(r.path))
    return sorted(candidates, key=key)[0] if candidates else None


def salora_fig6(runs, path):
    """The runs tagged fig6 (paper scale: the ablation's CoLA, STS-B and MRPC runs at b 0.5; small tier: the density
    sweep), one seed: one line per task and target density."""
    first = _salora_window_run(runs, "fig6")
    if first is None:
        return False
    seed = first.cfg.get("seed")
    lines = sorted((r for r in _salora_gated_runs(runs, "fig6") if r.cfg.get("seed") == seed),
                   key=lambda r: (r.task_name, float(r.cfg["method"]["target_density"])))
    several_tasks = len({r.task_name for r in lines}) > 1
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, key, title in zip(axes, ("density", "lambda", "orth_A", "orth_B"),
                              ("expected density C", "λ", "‖AAᵀ − I‖²", "‖BᵀB − I‖²")):
        for run in lines:
            steps, values = _series(run, key)
            label = f"b {run.cfg['method']['target_density']}"
            line, = ax.plot(steps, values, label=f"{run.task_name}, {label}" if several_tasks else label)
            if key == "density":  # the target, dotted, in the line's colour
                ax.axhline(float(run.cfg["method"]["target_density"]), ls=":", lw=0.8, color=line.get_color())
        if key.startswith("orth"):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    tasks = ", ".join(sorted({r.task_name for r in lines}))
    fig.suptitle(f"SaLoRA Fig. 6 ({first.model_name}, {tasks}, seed {seed}; the gate window is "
                 f"{first.cfg['method']['t_start']:.0%}-{first.cfg['method']['t_end']:.0%} of training)", fontsize=10)
    return _save(fig, path)


# Fig. 7's columns, keyed by the module's path inside its layer (RoBERTa names three of them "dense").
PAPER_MODULES = {"attention.self.query": "Wq", "attention.self.key": "Wk", "attention.self.value": "Wv",
                 "attention.output.dense": "Wo", "intermediate.dense": "Wu", "output.dense": "Wd",
                 "self_attn.q_proj": "Wq", "self_attn.k_proj": "Wk", "self_attn.v_proj": "Wv", "self_attn.o_proj": "Wo",
                 "mlp.gate_proj": "Wg", "mlp.up_proj": "Wu", "mlp.down_proj": "Wd"}
PAPER_MODULE_ORDER = ["Wq", "Wk", "Wv", "Wo", "Wg", "Wu", "Wd"]


def _layer_and_path(name: str) -> tuple[int, str]:
    """'roberta.encoder.layer.3.attention.self.query' → (3, 'attention.self.query')."""
    parts = name.split(".")
    at = next(i for i, part in enumerate(parts) if part.isdigit())
    return int(parts[at]), ".".join(parts[at + 1:])


def salora_fig7(runs, path):
    run = _salora_window_run(runs)
    if run is None or "rank_pattern" not in run.result.get("metrics", {}):
        return False
    pattern = run.result["metrics"]["rank_pattern"]
    cells = {_layer_and_path(name): kept for name, kept in pattern.items()}
    layers = sorted({layer for layer, _ in cells})
    kinds = sorted({path for _, path in cells}, key=lambda path: (PAPER_MODULE_ORDER.index(PAPER_MODULES[path])
                                                                 if path in PAPER_MODULES else len(PAPER_MODULE_ORDER), path))
    grid = [[cells.get((layer, kind), float("nan")) for kind in kinds] for layer in layers]
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(kinds), 1 + 0.5 * len(layers)))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=run.cfg["method"]["r"])
    ax.set_xticks(range(len(kinds)), [PAPER_MODULES.get(kind, kind) for kind in kinds], rotation=45, fontsize=8)
    ax.set_yticks(range(len(layers)), [f"layer {layer}" for layer in layers], fontsize=8)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="kept rank")
    ax.set_title("SaLoRA Fig. 7: kept rank per module", fontsize=10)
    return _save(fig, path)


def method_label_of(run) -> str:
    from .report import method_label

    return method_label(run.cfg)


def _sweep_plot(runs, table, key_of, line_of, xlabel, path, title):
    by = defaultdict(lambda: defaultdict(list))
    for run in _tagged(runs, table):
        by[f"{run.task_name}, {line_of(run)}"][key_of(run)].append((_final(run, "acc"), _final(run, "density")))
    if not by:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for task, points in sorted(by.items()):
        xs = sorted(points)
        axes[0].plot(xs, [100 * _mean(a for a, _ in points[x]) for x in xs], marker="o", label=task)
        axes[1].plot(xs, [_mean(d for _, d in points[x]) for x in xs], marker="o", label=task)
    axes[0].set_ylabel("dev accuracy (%)")
    axes[1].set_ylabel("final expected density")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def salora_fig4(runs, path):
    def line(run):   # LoRA beside SaLoRA at every rank
        m = run.cfg["method"]
        return f"SaLoRA b {m['target_density']}" if "target_density" in m else method_label_of(run)
    return _sweep_plot(runs, "fig4", lambda r: r.cfg["method"]["r"], line, "rank r", path, "SaLoRA Fig. 4: rank sweep")


def salora_fig5(runs, path):
    return _sweep_plot(runs, "fig5", lambda r: r.cfg["method"]["target_density"], lambda r: f"r {r.cfg['method']['r']}",
                       "target density b", path, "SaLoRA Fig. 5: density sweep")


# --------------------------------------------------------------------------------------------- MoRA
def mora_fig3(runs, path):
    return _curves(_tagged(runs, "fig3"), "char_acc", lambda r: f"{r.model_name}, UUID", path,
                   "MoRA Fig. 3: UUID memorisation (character accuracy)", "char accuracy")


def mora_fig4(runs, path):
    return _curves(_tagged(runs, "fig4"), "eval_loss", lambda r: f"{r.model_name} pretraining", path,
                   "MoRA Fig. 4: pretraining eval loss", "eval loss")


def mora_fig5(runs, path):
    points = defaultdict(list)
    for run in _tagged(runs, "fig5") or _tagged(runs, "fig3"):  # the pretraining runs, as the paper; else UUID
        counts = run.result.get("delta_sv_gt_0.1")
        if counts:
            points[_label(run)].append(statistics.fmean(counts.values()))
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    labels = sorted(points)
    ax.bar(range(len(labels)), [statistics.fmean(points[k]) for k in labels])
    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
    ax.set_ylabel("singular values of ΔW > 0.1 (mean per module)")
    ax.set_title("MoRA Fig. 5: rank of the learned update", fontsize=10)
    return _save(fig, path)
