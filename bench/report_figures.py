"""The papers' figures (matplotlib PNGs) and claims (in words, with the numbers behind them), from run records."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Claim = tuple[bool | None, str]


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
            ax.plot(steps, [statistics.fmean(s[t] for s in seeds) for t in steps], marker=".", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


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


def olora_claims(runs) -> list[Claim]:
    claims: list[Claim] = []
    pairs = defaultdict(dict)
    for run in _tagged(runs, "fig2"):
        steps, values = _series(run, "eval_loss")
        if values:
            pairs[(run.model_name, run.cfg["method"]["r"])][run.cfg["method"]["name"]] = values[0]
    comparable = {k: v for k, v in pairs.items() if {"lora", "olora"} <= set(v)}
    if comparable:
        wins = [k for k, v in comparable.items() if v["olora"] < v["lora"]]
        detail = "; ".join(f"{m} r{r}: OLoRA {v['olora']:.3f} vs LoRA {v['lora']:.3f}" for (m, r), v in sorted(comparable.items()))
        claims.append((len(wins) == len(comparable), f"OLoRA's early eval-loss advantage (first evaluation): OLoRA lower in "
                       f"{len(wins)} of {len(comparable)} model/rank pairs ({detail})."))
    else:
        claims.append((None, "OLoRA's early eval-loss advantage: no paired LoRA/OLoRA curve runs yet."))
    acc = defaultdict(list)
    for run in _tagged(runs, "i"):
        acc[run.cfg["method"]["name"]].append(_final(run, "acc"))
    lo, ol = _mean(acc.get("lora", [])), _mean(acc.get("olora", []))
    if lo is not None and ol is not None:
        claims.append((ol >= lo, f"Table I: OLoRA's mean commonsense accuracy {100 * ol:.2f} vs LoRA's {100 * lo:.2f} "
                       f"over {len(acc['olora'])} OLoRA / {len(acc['lora'])} LoRA runs (lm-eval acc)."))
    return claims


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
        ax.plot(lengths, [100 * _mean(by_len[n]) for n in lengths], marker="o", label=task)
    ax.set_xlabel("chain length")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks([1, 2, 3])
    ax.legend(fontsize=8)
    ax.set_title("COLA Fig. 2: accuracy vs chain length", fontsize=10)
    return _save(fig, path)


def cola_claims(runs) -> list[Claim]:
    claims: list[Claim] = []
    by = defaultdict(list)
    for run in [r for r in runs if r.feeds("1") or r.feeds("2")]:
        by[run.cfg["method"]["name"]].append(_final(run, "acc"))
    lo, co = _mean(by.get("lora", [])), _mean(by.get("cola", []))
    if lo is not None and co is not None:
        claims.append((co > lo, f"Tables 1-2: COLA's mean test accuracy {100 * co:.2f} vs LoRA's {100 * lo:.2f} over the "
                       f"SuperGLUE-style tasks and seeds ({len(by['cola'])} / {len(by['lora'])} runs)."))
    else:
        claims.append((None, "Tables 1-2 (COLA vs LoRA): no runs yet."))
    chain = defaultdict(list)
    for run in _tagged(runs, "fig2"):
        m = run.cfg["method"]
        if not (m.get("ranks") and len(set(m["ranks"])) > 1):
            chain[len(m.get("knots") or []) + 1].append(_final(run, "acc"))
    if 1 in chain and len(chain) > 1:
        base = _mean(chain[1])
        longer = {n: _mean(v) for n, v in chain.items() if n > 1}
        claims.append((all(v >= base for v in longer.values()), "Fig. 2: chain length 1 (LoRA) "
                       f"{100 * base:.2f} vs " + ", ".join(f"length {n}: {100 * v:.2f}" for n, v in sorted(longer.items())) + "."))
    flops = defaultdict(list)
    for run in _tagged(runs, "4"):
        from .report import rank_label

        flops[rank_label(run.cfg)].append(run.result.get("train_flops"))
    if "8->2" in flops and ("8->8" in flops or "8" in flops):
        full = _mean(flops.get("8->8") or flops["8"])
        claims.append((_mean(flops["8->2"]) < full, f"Table 4: stepping the rank down 8→2 costs {_mean(flops['8->2']):.3g} "
                       f"training FLOPs vs {full:.3g} at rank 8 throughout."))
    return claims


# --------------------------------------------------------------------------------------------- SaLoRA
def _salora_window_run(runs):
    candidates = [r for r in _tagged(runs, "1") if r.cfg["method"]["name"] == "salora"]
    return sorted(candidates, key=lambda r: (r.task_name != "sst2", str(r.path)))[0] if candidates else None


def salora_fig6(runs, path):
    run = _salora_window_run(runs)
    if run is None:
        return False
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, key, title in zip(axes, ("density", "lambda", "orth_A", "orth_B"),
                              ("expected density C", "λ", "‖AAᵀ − I‖²", "‖BᵀB − I‖²")):
        steps, values = _series(run, key)
        ax.plot(steps, values)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    fig.suptitle(f"SaLoRA Fig. 6 ({run.model_name}, {run.task_name}; target b = {run.cfg['method']['target_density']})", fontsize=10)
    return _save(fig, path)


def salora_fig7(runs, path):
    run = _salora_window_run(runs)
    if run is None or "rank_pattern" not in run.result.get("metrics", {}):
        return False
    pattern = run.result["metrics"]["rank_pattern"]
    layers = sorted({int(p) for name in pattern for p in name.split(".") if p.isdigit()})
    kinds = sorted({name.rsplit(".", 1)[-1] for name in pattern})
    grid = [[next((v for n, v in pattern.items() if f".{layer}." in n and n.endswith(kind)), float("nan")) for kind in kinds] for layer in layers]
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(kinds), 1 + 0.5 * len(layers)))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=run.cfg["method"]["r"])
    ax.set_xticks(range(len(kinds)), kinds, rotation=45, fontsize=8)
    ax.set_yticks(range(len(layers)), [f"layer {layer}" for layer in layers], fontsize=8)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="kept rank")
    ax.set_title("SaLoRA Fig. 7: kept rank per module", fontsize=10)
    return _save(fig, path)


def _sweep_plot(runs, key_of, line_of, xlabel, path, title):
    by = defaultdict(lambda: defaultdict(list))
    for run in _tagged(runs, "fig4"):
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
    return _sweep_plot(runs, lambda r: r.cfg["method"]["r"], lambda r: f"b {r.cfg['method']['target_density']}",
                       "rank r", path, "SaLoRA Fig. 4: rank sweep")


def salora_fig5(runs, path):
    return _sweep_plot(runs, lambda r: r.cfg["method"]["target_density"], lambda r: f"r {r.cfg['method']['r']}",
                       "target density b", path, "SaLoRA Fig. 5: density sweep")


def salora_claims(runs) -> list[Claim]:
    claims: list[Claim] = []
    sal = [r for r in _tagged(runs, "1") if r.cfg["method"]["name"] == "salora" and _final(r, "density") is not None]
    if sal:
        gaps = [(r.task_name, _final(r, "density"), r.cfg["method"]["target_density"]) for r in sal]
        reached = [g for g in gaps if abs(g[1] - g[2]) <= 0.05]
        claims.append((len(reached) == len(gaps), "SaLoRA's expected density reaches b (±0.05) in "
                       f"{len(reached)} of {len(gaps)} runs: " + ", ".join(f"{t} {d:.3f} (b {b})" for t, d, b in gaps) + "."))
    by = defaultdict(list)
    for run in _tagged(runs, "1"):
        from .report import GLUE_METRIC

        by[run.cfg["method"]["name"]].append(_final(run, GLUE_METRIC.get(run.task_name, "acc")))
    lo, sa = _mean(by.get("lora", [])), _mean(by.get("salora", []))
    if lo is not None and sa is not None:
        claims.append((sa >= lo, f"Table 1: SaLoRA's mean GLUE dev score {100 * sa:.2f} vs LoRA's {100 * lo:.2f}."))
    ablation = defaultdict(list)
    for run in _tagged(runs, "3"):
        from .report import method_label

        ablation[method_label(run.cfg)].append(_final(run, "density"))
    if "SaLoRA" in ablation and "SaLoRA_lambda=0" in ablation:
        full, no_lambda = _mean(ablation["SaLoRA"]), _mean(ablation["SaLoRA_lambda=0"])
        claims.append((full < no_lambda - 0.01, f"Table 3: the Lagrangian is what sparsifies (by more than 0.01): final "
                       f"density {full:.3f} with it vs {no_lambda:.3f} with λ = 0."))
    return claims or [(None, "no SaLoRA runs yet")]


# --------------------------------------------------------------------------------------------- MoRA
def mora_fig3(runs, path):
    return _curves(_tagged(runs, "fig3"), "char_acc", lambda r: f"{r.model_name}, UUID", path,
                   "MoRA Fig. 3: UUID memorisation (character accuracy)", "char accuracy")


def mora_fig4(runs, path):
    return _curves(_tagged(runs, "fig4"), "eval_loss", lambda r: f"{r.model_name} pretraining", path,
                   "MoRA Fig. 4: pretraining eval loss", "eval loss")


def mora_fig5(runs, path):
    points = defaultdict(list)
    for run in _tagged(runs, "fig3"):
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


def mora_claims(runs) -> list[Claim]:
    claims: list[Claim] = []
    acc = defaultdict(dict)
    for run in _tagged(runs, "2"):
        acc[run.cfg["method"]["r"]][run.cfg["method"]["name"]] = _final(run, "char_acc")
    pairs = {r: v for r, v in acc.items() if {"lora", "mora"} <= set(v)}
    if pairs:
        wins = [r for r, v in pairs.items() if v["mora"] > v["lora"]]
        claims.append((len(wins) == len(pairs), "MoRA beats LoRA on UUID memorisation at equal trainable parameters: "
                       + "; ".join(f"r {r}: MoRA {100 * v['mora']:.1f}% vs LoRA {100 * v['lora']:.1f}% char accuracy" for r, v in sorted(pairs.items())) + "."))
    ppl = {}
    for run in _tagged(runs, "3"):
        ppl[run.cfg["method"]["name"]] = _final(run, "perplexity")
    if {"lora", "mora"} <= set(ppl):
        claims.append((ppl["mora"] < ppl["lora"], f"Table 3 pretraining: MoRA perplexity {ppl['mora']:.1f} vs LoRA {ppl['lora']:.1f}"
                       + (f"; ReMoRA {ppl['remora']:.1f} vs ReLoRA {ppl['relora']:.1f}" if {"relora", "remora"} <= set(ppl) else "") + "."))
    svs = defaultdict(list)
    for run in _tagged(runs, "fig3"):
        counts = run.result.get("delta_sv_gt_0.1")
        if counts:
            svs[run.cfg["method"]["name"]].append(statistics.fmean(counts.values()))
    if {"lora", "mora"} <= set(svs):
        claims.append((_mean(svs["mora"]) > _mean(svs["lora"]), f"Fig. 5: MoRA's update has more singular values above 0.1 "
                       f"({_mean(svs['mora']):.1f} per module) than LoRA's ({_mean(svs['lora']):.1f})."))
    return claims or [(None, "no MoRA runs yet")]


FIGURES: dict[str, dict[str, Callable]] = {
    "olora": {"fig2_fig3_eval_loss": olora_fig2},
    "cola": {"fig2_chain_length": cola_fig2},
    "salora": {"fig4_rank_sweep": salora_fig4, "fig5_density_sweep": salora_fig5, "fig6_training_dynamics": salora_fig6,
               "fig7_kept_rank": salora_fig7},
    "mora": {"fig3_uuid": mora_fig3, "fig4_pretraining": mora_fig4, "fig5_singular_values": mora_fig5},
}
CLAIMS = {"olora": olora_claims, "cola": cola_claims, "salora": salora_claims, "mora": mora_claims}
