"""What `bench.perf`'s timings say: each row's median step, its paired ratios to the reference rows with their
intervals, the goals each row is held to and the verdicts, the page (results/perf.md) and its numbers (perf.json)."""

from __future__ import annotations

from pathlib import Path

from methods import METHODS

from ..records import atomic_write_json, atomic_write_text
from ..stats import median_interval, median_iqr, paired_ratios, verdict
from .bench import FLOOR_ROW, PEFT_ROW, PER_LAYER_ROW, REFERENCE_METHOD, SUITE_ROW, Row


def amortised_extra(row: Row, cfg) -> float:
    """Seconds a step carries of the row's one-time costs (COLA's knot, ReLoRA's restarts) over an epoch; an init
    (OLoRA's QR) is shown as its share of an epoch instead."""
    return row.one_time_s * row.one_time_count / cfg.epoch_steps if row.one_time_cost != "init" else 0.0


def summarise(rows: list[Row], cfg) -> list[dict]:
    by_name = {row.name: row for row in rows}
    tokens = cfg.batch * cfg.seq_len
    out = []
    for row in rows:
        median, iqr = median_iqr(row.samples)
        out.append({
            "row": row.name, "median_step_ms": 1e3 * median, "iqr_ms": 1e3 * iqr,
            "amortised_step_ms": 1e3 * (median + amortised_extra(row, cfg)), "tokens_per_s": tokens / median, "trainable_params": row.trainable,
            "peak_mem_mb": None if row.peak_mem_bytes is None else row.peak_mem_bytes / 2**20,
            "one_time_s": row.one_time_s or None,
            "one_time_share_of_epoch": (row.one_time_s / (row.one_time_s + cfg.epoch_steps * median)) if row.one_time_cost == "init" else None,
        })
    amortised = {row.name: [s + amortised_extra(row, cfg) for s in row.samples] for row in rows}
    mem = {name: by_name[name].peak_mem_bytes for name in (REFERENCE_METHOD, PEFT_ROW)}
    for entry in out:
        steps = amortised[entry["row"]]
        for key, reference in (("vs_lora", REFERENCE_METHOD), ("vs_peft_lora", PEFT_ROW), ("vs_floor", FLOOR_ROW)):
            ratios = paired_ratios(steps, amortised[reference])
            entry[key], entry[f"{key}_iqr"] = median_iqr(ratios)
            entry[f"{key}_ci"] = list(median_interval(ratios))
        entry["arithmetic_vs_floor"] = by_name[entry["row"]].predicted_vs_floor
        entry["overhead_beyond_arithmetic"] = entry["vs_floor"] / entry["arithmetic_vs_floor"]
        entry["overhead_beyond_arithmetic_ci"] = [bound / entry["arithmetic_vs_floor"] for bound in entry["vs_floor_ci"]]
        peak = by_name[entry["row"]].peak_mem_bytes
        entry["mem_vs_lora"] = peak / mem[REFERENCE_METHOD] if peak and mem[REFERENCE_METHOD] else None
        entry["mem_vs_peft_lora"] = peak / mem[PEFT_ROW] if peak and mem[PEFT_ROW] else None
    return out


OVERHEAD_LIMIT = 1.10  # every row: measured ratio to the floor over its arithmetic ratio
# The performance issue's goals for perf's reference rows: (key, limit, ranks or None for every rank); a method's
# rows carry their own (``perf_rows``). Shown, never asserted.
REFERENCE_GOALS = {
    REFERENCE_METHOD: [("vs_floor", 1.15, ("8",)), ("vs_peft_lora", 0.95, ("8",)), ("vs_peft_lora", 1.00, None)],
    SUITE_ROW: [("vs_peft_lora", 1.00, None)],
}
GOAL_LABELS = {"vs_floor": "× floor", "vs_peft_lora": "× peft", "vs_lora": "× LoRA",
               "overhead_beyond_arithmetic": "overhead"}


def row_goals() -> dict[str, list[tuple[str, float, tuple[str, ...] | None]]]:
    """Each row's goals by row name: the reference rows' and every registered method's."""
    goals = dict(REFERENCE_GOALS)
    goals.update({variant.name: list(variant.goals) for cls in METHODS.values() for variant in cls.perf_rows()
                  if variant.goals})
    return goals


VERDICTS = ("met", "missed", "unresolved")


def goal_verdict(entry: dict, key: str, limit: float) -> str:
    """met: the median ratio's 95% interval lies at or below the limit; missed: above it; unresolved: it spans the
    limit (the machine's spread over these repetitions cannot tell). Entries without an interval: the median."""
    low, high = entry.get(f"{key}_ci") or (entry[key], entry[key])
    return {"held": "met", "contradicted": "missed"}.get(verdict(low, high, limit, "less", inclusive=True), "unresolved")


def goals_for(entry: dict, rank: str) -> list[tuple[str, str]]:
    """(label, verdict) for each goal that applies to this row at this rank; the overhead goal applies to every row
    with arithmetic beyond the floor's."""
    goals = [(key, limit) for key, limit, ranks in row_goals().get(entry["row"], []) if ranks is None or rank in ranks]
    if entry["row"] not in (FLOOR_ROW, SUITE_ROW, PER_LAYER_ROW):  # reference rows, not goals
        goals.append(("overhead_beyond_arithmetic", OVERHEAD_LIMIT))
    return [(f"{GOAL_LABELS[key]} ≤ {limit:.2f}", goal_verdict(entry, key, limit)) for key, limit in goals]


def render(report: dict) -> str:
    h = report["header"]
    lines = [
        "# Performance: cost per training step and memory",
        "",
        f"Generated by `python -m bench.perf` ({h['when']}). Machine: {h['machine']}; device: {h['device']}; dtype: "
        f"{h['dtype']}; model: {h['model']} ({h['model_params'] / 1e6:.2f} M params), batch {h['batch']} × seq {h['seq_len']}; "
        f"{h['reps']} interleaved repetitions after {h['warmup']} warm-up steps; memory: {h['memory_method']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in h["versions"].items()) + ".",
        f"One-time costs are amortised over a {h['epoch_steps']}-step epoch (COLA: one knot per epoch for a chain of 2; "
        f"ReLoRA/ReMoRA: a restart every {h['restart_every']} steps). Ratios use the amortised step time and are paired: "
        "the median over repetitions of each repetition's ratio (a repetition runs every row back to back, so the "
        "machine's drift divides out), with the IQR of the ratio to the floor in brackets. A goal is met where the "
        "95% interval of its median ratio (order statistics over the repetitions) lies at or below the limit, missed "
        "where it lies above, unresolved where it spans the limit.",
        "",
    ]
    for r, rows in report["ranks"].items():
        lines += [f"## r = {r}", "",
                  "| row | median step ms (IQR) | amortised ms | tokens/s | × our LoRA | × peft LoRA | × floor (IQR) | "
                  "arithmetic × floor | overhead beyond arithmetic | peak mem MB | mem × LoRA | mem × peft | trainable | "
                  "goals | met |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        counts = dict.fromkeys(VERDICTS, 0)
        for e in rows:
            goals = goals_for(e, str(r))
            for _, outcome in goals:
                counts[outcome] += 1
            fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
            extra = (f" (init {e['one_time_s']:.3f} s = {100 * e['one_time_share_of_epoch']:.3f}% of an epoch)"
                     if e["one_time_share_of_epoch"] else "")
            lines.append(f"| {e['row']}{extra} | {e['median_step_ms']:.1f} ({e['iqr_ms']:.1f}) | {e['amortised_step_ms']:.1f} | "
                         f"{e['tokens_per_s']:.0f} | {e['vs_lora']:.3f} | {e['vs_peft_lora']:.3f} | {e['vs_floor']:.3f} ({e['vs_floor_iqr']:.3f}) | "
                         f"{e['arithmetic_vs_floor']:.3f} | {e['overhead_beyond_arithmetic']:.3f} | "
                         f"{fmt(e['peak_mem_mb'], 1)} | {fmt(e['mem_vs_lora'], 3)} | {fmt(e['mem_vs_peft_lora'], 3)} | "
                         f"{e['trainable_params']:,} | {'; '.join(g for g, _ in goals)} | "
                         f"{' / '.join(verdict for _, verdict in goals)} |")
        lines += ["", f"Goals at r = {r}: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
                  + f" (of {sum(counts.values())}).", ""]
    return "\n".join(lines)


def write_outputs(out: Path, stem: str, report: dict, markdown: str) -> Path:
    """<stem>.json (the numbers) and <stem>.md (the page), atomically; returns the page's path."""
    atomic_write_json(out / f"{stem}.json", report)
    atomic_write_text(out / f"{stem}.md", markdown)
    return out / f"{stem}.md"
