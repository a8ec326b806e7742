"""`make compare` / `python -m bench.compare`: every method of the suite on one task per paper's family, at two
matched trainable-parameter budgets, over seeds — the head-to-head none of the four papers has.

    python -m bench.compare                  # the report alone: results/compare/ from the records (never trains)
    python -m bench.compare run [--scale S]  # train what is missing, then the report (make compare)

The grid is data: ``FAMILIES`` (one experiment per family, conf/experiment/compare_<family>[_small].yaml), the arms
(conf/arm/<arm>.yaml, each sized from ``compare.budget``) and the budgets/seeds the experiments sweep. Runs are
ordinary suite runs: resumable, skipped when finished, recorded into results/compare/records/ like the papers'.

The page: per family and budget a leaderboard (mean and 95% t-interval over seeds; the best arm in bold and every
arm whose paired difference to it over seeds has an interval spanning zero marked "tied"), the average rank over
families per budget with a bootstrap interval (seeds resampled within each arm, fixed generator: the page
regenerates byte-identically), and Pareto plots of quality against trainable parameters, step time and memory
(the last two from results/perf.json, bench.perf's measurement at r 8).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import stats
from .claims import fmt_number, metric_of
from .errors import UserError, report_and_exit
from .records import atomic_write_text, read_json

NAME = "compare"   # the report tag (report.paper) of every comparison run and its records folder
OUT = Path("results") / NAME


@dataclass(frozen=True)
class Family:
    key: str          # the report table the experiment tags (report.tables)
    label: str
    experiment: str   # base name: conf/experiment/<experiment>.yaml (paper scale), <experiment>_<tier>.yaml
    metric: str       # a metric expression (bench.claims.metric_of)
    direction: str    # "greater" or "less" is better
    unit: str
    small: str        # what the CPU tier runs, in words (its steps are read off the records)
    paper: str        # what the paper-scale experiment runs, in words


FAMILIES = (
    Family("memorisation", "Memorisation (MoRA)", "compare_uuid", "final.char_acc", "greater", "character accuracy",
           "stories260K memorising 64 UUID pairs", "LLaMA-2-7B memorising 10k UUID pairs (MoRA §3)"),
    Family("pretraining", "Pretraining from scratch (MoRA)", "compare_pretrain", "final.perplexity", "less",
           "held-out perplexity", "tiny_llama (random init) on the shared corpus",
           "LLaMA-style 250M on C4 (MoRA §5.3)"),
    Family("adaptation", "Continual adaptation to new text (OLoRA / COLA)", "compare_adapt", "final.eval_loss", "less",
           "held-out eval loss", "pretrained stories260K on the shared corpus",
           "LLaMA-2-7B on Alpaca instructions, held-out loss (OLoRA's 7B setting)"),
    Family("classification", "Classification (SaLoRA / COLA)", "compare_classify", "final.acc", "greater", "accuracy",
           "stories260K + head on glue_source (4-way, chance 0.25)",
           "RoBERTa-base on SST-2 (SaLoRA Table 1)"),
)
# Every method of the suite, in the page's order; labels as the papers print them.
ARMS = {
    "lora": "LoRA", "olora": "OLoRA", "cola": "COLA (chain of 2)", "salora": "SaLoRA", "mora_sharing": "MoRA (sharing)",
    "mora_truncation": "MoRA (truncation)", "mora_decoupling": "MoRA (decoupling)", "mora_rotation": "MoRA (rotation)",
    "relora": "ReLoRA", "remora": "ReMoRA", "dora": "DoRA", "loraplus": "LoRA+", "asylora": "AsyLoRA",
    "adalora": "AdaLoRA", "adapter_h": "Adapter^H", "adapter_p": "Adapter^P", "prefix": "Prefix", "prompt": "Prompt",
    "fft": "FFT",
}
REFERENCE = "fft"   # trains every weight: shown beside each budget's board, never ranked
REFERENCE_RUN = (f"arm={REFERENCE}", "compare.budget=8")   # run once per seed; its budget is a placeholder
SWEEPS = ((), REFERENCE_RUN)   # per family: the grid, then the reference arm (make compare, make smoke, the check)
NOT_RUN = {   # (arm, family key or "*" for every family) -> why it has no runs there
    ("prompt", "*"): "not run: prompt tuning trains 64 parameters per virtual token on the 64-wide stand-ins, so "
                     "matching LoRA's budget needs 90 tokens per rank (180 at budget 2, 722 at budget 8: beyond "
                     "stories260K's 512 positions, and several times the tasks' own text)",
    ("prefix", "classification"): "not run at the CPU tier: stories260K's classification model "
                                  "(LlamaForSequenceClassification) takes no past key values in transformers 5, so "
                                  "peft's prefixes cannot reach it, and the suite's own prefixes need an encoder's "
                                  "bidirectional attention (the paper-scale grid runs it on RoBERTa-base)",
}


def not_run(arm: str, family: str) -> str | None:
    return NOT_RUN.get((arm, family)) or NOT_RUN.get((arm, "*"))


# bench.perf's row for each arm (results/perf.json, r 8): the step-time and memory axes of the Pareto plots.
PERF_ROWS = {"salora": "salora (in window)", "adalora": "adalora (in window)", "mora_sharing": "mora (sharing)",
             "mora_truncation": "mora (truncation)", "mora_decoupling": "mora (decoupling)",
             "mora_rotation": "mora (rotation)", "cola": "cola (2 links)"}
BOOTSTRAP = 2000
BUDGET_NOTES = (
    "SaLoRA and AdaLoRA train twice the budget's rank and keep half of it (target density / budget ratio 0.5): the "
    "trainable column shows what they train, what they keep matches the budget.",
    "MoRA's r̂ = ⌊√((d + k)·r)⌋ per module is rounded down (further for rotation's even blocks): its count is at or "
    "below LoRA's, by up to 13.5% at budget 2. The adapters' widths and the prefix length are integers matched "
    "to within 6% (tests/test_compare.py counts every arm).",
    "Pretraining trains the embeddings, head and norms in full beside every arm (MoRA §5.3); the peft-backed arms "
    "(DoRA, AdaLoRA, prefix) untie the tied head (peft's modules_to_save copies it), +32,768 trainable there.",
)


# ------------------------------------------------------------------------------------------ reading runs
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


def cells_of(family: Family, runs: list) -> dict[tuple[str, int | None], Cell]:
    """(arm, budget) -> Cell from the family's runs; the reference arm's budget is None."""
    cells: dict[tuple[str, int | None], Cell] = {}
    for run in runs:
        cfg = run.cfg
        if not run.feeds(family.key) or arm_of(cfg) is None:
            continue
        arm = arm_of(cfg)
        budget = None if arm == REFERENCE else budget_of(cfg)
        cell = cells.setdefault((arm, budget), Cell(arm, budget, {}, []))
        if run.status != "ok":
            cell.failed += run.status == "failed"
            continue
        value = metric_of(run.result, run.metrics_rows(), family.metric)
        if value is not None:
            cell.values[int(cfg.get("seed", 0))] = value
            cell.params.append(int(run.result.get("trainable_params") or 0))
    return cells


def better(family: Family, a: float, b: float) -> bool:
    return a > b if family.direction == "greater" else a < b


def best_of(family: Family, cells) -> Cell | None:
    """The cell with the best mean (the first of equals), among those with values."""
    best = None
    for c in cells:
        if c.values and (best is None or better(family, c.mean, best.mean)):
            best = c
    return best


def paired_tie(best: Cell, other: Cell) -> bool:
    """The paired difference over common seeds has a 95% interval spanning zero (or too few pairs to say)."""
    return stats.ties(best.values, other.values)


def ranks_of(family: Family, means: dict[str, float]) -> dict[str, float]:
    """Rank 1 = best; ties share the average rank."""
    return stats.ranks(means, family.direction == "greater")


def average_ranks(families: list[Family], cells_by_family: dict[str, dict], budget: int,
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
    higher_is_better = {f.key: f.direction == "greater" for f in families}
    return stats.bootstrap_average_ranks(samples, higher_is_better, BOOTSTRAP, seed)


# ------------------------------------------------------------------------------------------ the page
def fmt_cell(cell: Cell) -> str:
    if not cell.values:
        return f"failed ({cell.failed} runs)" if cell.failed else "no runs"
    mean, low, high = stats.t_interval(list(cell.values.values()))
    if not math.isfinite(low):
        return f"{fmt_number(mean)} (1 seed)"
    return f"{fmt_number(mean)} ± {fmt_number(high - mean)}"


def leaderboard(family: Family, cells: dict, budget: int) -> tuple[list[str], list[dict]]:
    board = {arm: c for (arm, b), c in cells.items() if b == budget}
    scored = [c for c in board.values() if c.values]
    best = best_of(family, scored)
    ranks = ranks_of(family, {c.arm: c.mean for c in scored}) if scored else {}
    order = sorted(board.values(), key=lambda c: (c.mean is None, ranks.get(c.arm, 0.0), c.arm))
    lines = [f"| rank | method | trainable params | {family.unit} (mean ± 95% CI half-width) | seeds | |",
             "|---|---|---|---|---|---|"]
    rows = []
    reference = cells.get((REFERENCE, None))
    for c in ([reference] if reference else []) + order:
        is_ref = c.arm == REFERENCE
        mark = ("reference (all weights)" if is_ref else "**best**" if c is best
                else "tied" if best is not None and c.values and paired_tie(best, c) else "")
        label = f"**{ARMS.get(c.arm, c.arm)}**" if c is best else ARMS.get(c.arm, c.arm)
        params = f"{int(statistics.median(c.params)):,}" if c.params else "–"
        rank = "–" if is_ref or c.arm not in ranks else f"{ranks[c.arm]:g}"
        lines.append(f"| {rank} | {label} | {params} | {fmt_cell(c)} | {len(c.values)} | {mark} |")
        rows.append({"family": family.key, "budget": "all" if is_ref else budget, "arm": c.arm,
                     "trainable_params": params.replace(",", ""), "mean": "" if c.mean is None else f"{c.mean:.6g}",
                     "seeds": len(c.values), "rank": rank, "mark": mark})
    for arm in ARMS:
        why = not_run(arm, family.key)
        if why and (arm, budget) not in cells:
            lines.append(f"| – | {ARMS[arm]} | – | not run (why: [Coverage](#coverage)) | 0 | |")
    return lines, rows


def coverage(families: list[Family], cells_by_family: dict) -> list[str]:
    """Runs per method × family, or why there are none (each reason written out once, below the table)."""
    lines = ["| method | " + " | ".join(f.key for f in families) + " |", "|---|" + "---|" * len(families)]
    for arm, label in ARMS.items():
        row = []
        for fam in families:
            cells = [c for (a, _), c in cells_by_family[fam.key].items() if a == arm]
            if not cells and not_run(arm, fam.key):
                row.append("not run (below)")
            elif not cells:
                row.append("no runs yet")
            else:
                ok = sum(len(c.values) for c in cells)
                failed = sum(c.failed for c in cells)
                row.append(f"{ok} runs" + (f", {failed} failed" if failed else ""))
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("")
    for (arm, family), why in NOT_RUN.items():
        lines.append(f"- {ARMS[arm]}, {'every family' if family == '*' else family}: {why}.")
    return lines


def budgets_in(cells_by_family: dict) -> list[int]:
    return sorted({b for cells in cells_by_family.values() for (_, b) in cells if b is not None})


def render(runs: list, out: Path, perf_path: Path = Path("results") / "perf.json", excluded: list = ()) -> dict:
    from .report import describe_code, describe_compute, describe_scales, render_excluded, write_csv
    from .compare_figures import pareto_params, pareto_perf

    families = list(FAMILIES)
    cells_by_family = {f.key: cells_of(f, runs) for f in families}
    budgets = budgets_in(cells_by_family)
    head = ["# The comparison: every method on every paper's task family, at equal budgets", "",
            "Regenerated by `python -m bench.compare` from the run records in [records/](records/); never edited by "
            "hand. `make compare` trains what is missing first.", ""]
    body, csv_rows, headline = [], [], {}
    for budget in budgets:
        headline[budget] = average_ranks(families, cells_by_family, budget)
    head += ["## Average rank over the four families", "",
             "Rank 1 = best within a family and budget among the arms that ran there (ties share the average rank), "
             "averaged over the families an arm ran in; the interval is a bootstrap "
             f"over seeds ({BOOTSTRAP} draws, each arm's seeds resampled within each family). Budgets are LoRA-rank "
             "equivalents of the 64-wide stand-ins; every arm trains about LoRA's count at that rank (conf/arm).", ""]
    if budgets:
        head.append("| method | " + " | ".join(f"budget {b}: average rank [95% CI]" for b in budgets)
                    + " | best or tied (families × budgets) |")
        head.append("|---|" + "---|" * (len(budgets) + 1))
        wins = _wins(families, cells_by_family, budgets)
        arms = sorted({a for b in budgets for a in headline[b]},   # ties by name: a set's order varies per process
                      key=lambda a: (statistics.fmean(headline[b][a][0] for b in budgets if a in headline[b]), a))
        for arm in arms:
            parts = [(f"{headline[b][arm][0]:.1f} [{headline[b][arm][1]:.1f}, {headline[b][arm][2]:.1f}]"
                      + ("" if headline[b][arm][3] == len(families) else f" ({headline[b][arm][3]} families)")
                      if arm in headline[b] else "–") for b in budgets]
            head.append(f"| {ARMS.get(arm, arm)} | " + " | ".join(parts) + f" | {wins.get(arm, 0)} |")
        head.append("")
    head += ["Tasks (one per paper's family; the CPU tier's stand-ins, labelled as such):", ""]
    head += [f"- **{f.label}** — {f.small}{steps_of(f, runs)}; metric: {f.unit} "
             f"({'higher' if f.direction == 'greater' else 'lower'} is better). Paper scale: {f.paper}." for f in families]
    head += ["", "Every arm of a family trains on the same data for the same steps at one shared learning rate "
             "(the family's, untuned per method: methods that want another rate, e.g. prefix tuning, are at a "
             "disadvantage the boards do not correct).", ""]
    head += [f"- {note}" for note in BUDGET_NOTES]
    head += [f"- {line}" for line in density_notes(families, runs)]
    for fam in families:
        body += [f"## {fam.label}", ""]
        for budget in budgets:
            lines, rows = leaderboard(fam, cells_by_family[fam.key], budget)
            body += [f"### budget {budget}", ""] + lines + [""]
            csv_rows += rows
    figures = []
    if pareto_params(families, cells_by_family, ARMS, out / "pareto_params.png"):
        figures.append(("pareto_params.png", "Quality vs trainable parameters (each family; both budgets)"))
    perf = read_json(perf_path) if perf_path.exists() else None
    for axis, title in (("amortised_step_ms", "step time"), ("peak_mem_mb", "peak memory")):
        name = f"pareto_{'step_time' if axis == 'amortised_step_ms' else 'memory'}.png"
        if perf and pareto_perf(headline, perf, axis, title, PERF_ROWS, ARMS, out / name):
            figures.append((name, f"Average rank vs {title} (bench.perf, r 8, {perf['header'].get('model')})"))
        else:
            (out / name).unlink(missing_ok=True)
    body += ["## Pareto plots", ""] + [f"{caption}:\n\n![{name}]({name})\n" for name, caption in figures]
    body += ["## Coverage", "", *coverage(families, cells_by_family), ""]
    body += ["## The same grid at paper scale", "",
             "`make compare SCALE=paper LAUNCHER=slurm` (conf/experiment/compare_<family>.yaml: the models above, "
             "budgets r 8 and 64, 3 seeds, through Hydra's submitit launcher); `make smoke PAPERS=compare` runs every "
             "job of that grid once on a miniature of its model here.", ""]
    ok = [r for r in runs if r.status == "ok"]
    body += ["## Scale and compute", "", "; ".join(describe_scales(ok)) or "no runs", "", describe_compute(ok), "",
             describe_code(ok), ""]
    body += render_excluded(list(excluded), heading="##")
    atomic_write_text(out / "README.md", "\n".join(head + [""] + body))
    write_csv(out / "leaderboard.csv", csv_rows)
    return {"budgets": budgets, "headline": headline}


def steps_of(family: Family, runs: list) -> str:
    """The family's training steps, read off its records (not restated beside the experiment file)."""
    steps = sorted({run.result.get("steps") for run in runs if run.status == "ok" and run.feeds(family.key)} - {None})
    return f", {'/'.join(map(str, steps))} steps" if steps else ""


def density_notes(families: list[Family], runs: list) -> list[str]:
    """Where SaLoRA's expected density ended (its kept budget assumes b = 0.5), per family and budget."""
    lines = []
    for fam in families:
        by_budget: dict[int, list[float]] = {}
        for run in runs:
            if run.status == "ok" and run.feeds(fam.key) and arm_of(run.cfg) == "salora":
                density = (run.result.get("metrics") or {}).get("density")
                if density is not None:
                    by_budget.setdefault(budget_of(run.cfg), []).append(float(density))
        if by_budget:
            parts = ", ".join(f"budget {b}: {statistics.fmean(v):.3f} ({len(v)} seeds)" for b, v in sorted(by_budget.items()))
            lines.append(f"SaLoRA's final expected density on {fam.key} (target 0.5): {parts}.")
    return lines


def _wins(families, cells_by_family, budgets) -> dict[str, int]:
    wins: dict[str, int] = {}
    for fam in families:
        for budget in budgets:
            board = [c for (a, b), c in cells_by_family[fam.key].items() if b == budget and c.values]
            best = best_of(fam, board)
            for c in board:
                if c is best or paired_tie(best, c):
                    wins[c.arm] = wins.get(c.arm, 0) + 1
    return wins


def headline_table(out: Path = OUT) -> str:
    """The average-rank table of results/compare/README.md (the README's first screen shows it)."""
    text = (out / "README.md").read_text() if (out / "README.md").exists() else ""
    section = text.split("## Average rank over the four families", 1)[-1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


# ------------------------------------------------------------------------------------------ running
def experiments(tier: str) -> list[str]:
    return [f.experiment if tier == "paper" else f"{f.experiment}_{tier}" for f in FAMILIES]


def sweeps(tier: str) -> dict[str, list[list[str]]]:
    """The jobs `make compare SCALE=<tier>` launches, per experiment: each family's grid and its reference arm."""
    from .sweep.sweeps import sweep_jobs

    return {exp: [job for fixed in SWEEPS for job in sweep_jobs(exp, [f"scale={tier}", *fixed])]
            for exp in experiments(tier)}


def run(options) -> list[str]:
    """Each family's grid, then its reference arm once per seed: ordinary multiruns (finished runs are skipped).
    Returns the sweeps that did not finish cleanly."""
    from .sweep.launch import Sweep, run_sweeps, runs_dir_of

    tier = options.scale
    from .paths import EXPERIMENTS_DIR as conf
    for exp in experiments(tier):
        if not (conf / f"{exp}.yaml").exists():
            raise UserError(f"SCALE={tier}: no comparison experiment {conf / (exp + '.yaml')}; valid: small, paper")
    sweeps = [Sweep(f"compare / {exp} {' '.join(arm_override) or '(grid)'} ({tier})", exp,
                    [*options.overrides(), *arm_override])
              for exp in experiments(tier) for arm_override in SWEEPS]
    return run_sweeps("compare", sweeps, runs_dir_of([]), options.env())


def report(runs_dir: Path, out_root: Path, allow_missing: bool = False) -> dict:
    from .report import gather

    owned, excluded, synced = gather(runs_dir, out_root, [NAME], allow_missing)
    runs = owned[NAME]
    if not runs:
        raise UserError(f"no comparison records in {out_root / NAME / 'records'} and none finished in --runs="
                        f"{str(runs_dir)!r}; train first (make compare) — nothing was written")
    summary = render(runs, out_root / NAME, out_root / "perf.json", excluded)
    print(f"compare: {out_root / NAME / 'README.md'} ({len(runs)} records, {synced} new from {runs_dir})")
    return summary


def main(argv: Iterable[str] | None = None) -> int:
    from .cli_args import one_line_parser
    from .sweep.launch import launch_options

    parser = one_line_parser("python -m bench.compare", __doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", default="report", choices=("report", "run"))
    parser.add_argument("--scale", default=os.environ.get("SCALE"), help="tier to train (run): small (default) | paper")
    parser.add_argument("--seeds", default=os.environ.get("SEEDS"), help="run: a comma list of integers")
    parser.add_argument("--launcher", default=os.environ.get("LAUNCHER"), help="run: basic | joblib | local | slurm")
    parser.add_argument("--jobs", default=os.environ.get("JOBS"), help="run: parallel jobs of the joblib launcher")
    parser.add_argument("--runs", default=os.environ.get("LORABENCH_RUNS", "runs"))
    parser.add_argument("--out", default="results")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the page even if some records cannot be used (the page lists them)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    failed: list[str] = []
    try:
        if args.action == "run":
            failed = run(launch_options(args.scale, args.seeds, args.launcher, args.jobs))
        report(Path(args.runs), Path(args.out), args.allow_missing)
    except UserError as err:
        report_and_exit(err)
    if failed:
        print(f"compare: {len(failed)} sweep(s) did not finish cleanly: {'; '.join(failed)} (see FAILED lines and "
              "error.json in their run dirs; the same command resumes them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
