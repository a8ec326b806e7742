"""`python -m bench.report [--paper P] [--runs DIR] [--out DIR]` (`make report`): results/ from run records alone.

For every published table (bench/published/<paper>_table*.csv) it writes results/<paper>/<table>.md and .csv:
the paper's layout (rows, columns, every published cell) with the reproduced value beside the published one,
seeds as mean ± std, the winner per the paper's convention in bold; then the same layout at the scale the runs
were made at (tiny stand-in models), since tiny numbers are not the paper's models. One PNG per figure, the
paper's claims in words with the numbers behind them at the top of results/<paper>/README.md, and
results/README.md indexing everything with the scale of every number. It never trains, is idempotent, and a
missing or failed run shows as such, never as a number.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .cli_args import one_line_parser
from .errors import UserError, report_and_exit
from .records import ERROR, METRICS, RESULT, atomic_write_text, is_locked, read_json, record_problem

from .paths import PUBLISHED_DIR
PUBLISHED_COLUMNS = ("paper", "table", "model", "task", "rank", "method", "setting", "metric", "value", "std",
                     "source", "status", "primary_url", "note")
from . import papers as paper_specs
from .claims import Outcome, config_value, evaluate_claim, metric_of, paired_values

PAPERS = paper_specs.PAPERS
PAPER_TITLES = {p: paper_specs.load(p).title for p in PAPERS}
RECORDS = "records"
UNNAMED_MODEL = "notnamed"  # a published row whose model the paper does not name matches any model
LOWER_IS_BETTER = {"perplexity", "training_flops", "training_time", "peak_gpu_memory", "trainable_params", "PPL"}

MODEL_LABELS = {
    "tinyllama-1.1b": "TinyLlama-1.1B", "gemma-2b": "Gemma-2B", "opt-1.3b": "OPT-1.3B", "llama2-7b": "LLaMA-2-7B",
    "mistral-7b": "Mistral-7B", "roberta-base": "RoBERTa-base", "roberta-large": "RoBERTa-large",
    "llama-250m": "LLaMA-style 250M (from scratch)", "llama-1b": "LLaMA-style 1.3B (from scratch)",
    "stories260k": "stories260K (tiny stand-in)", "tiny_llama": "tiny Llama (random init)",
    "tiny_opt": "tiny OPT (random init)", "tiny_roberta": "tiny RoBERTa (random init)",
}
TASK_LABELS = {p: paper_specs.load(p).task_labels for p in PAPERS}
METHOD_LABELS = {"lora": "LoRA", "olora": "OLoRA", "cola": "COLA", "salora": "SaLoRA", "mora": "MoRA",
                 "relora": "ReLoRA", "remora": "ReMoRA", "fft": "FFT", "dora": "DoRA", "loraplus": "LoRA+",
                 "asylora": "AsyLoRA", "adalora": "AdaLoRA", "prefix": "Prefix", "prompt": "Prompt",
                 "adapter_h": "Adapter^H", "adapter_p": "Adapter^P"}
METHOD_ALIASES = {"fft": ("FT",)}  # the names other papers give the same row (SaLoRA's "FT")
RANKLESS = ("fft", "prefix", "prompt")  # methods that accept r and ignore it: their rank reads "–"
GLUE_METRIC = {"cola": "mcc", "stsb": "pearson", "mrpc": "f1"}


def norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower().replace("+", "plus"))  # LoRA+ is not LoRA


# ----------------------------------------------------------------------------------------------- published
def load_published(paper: str, directory: Path = PUBLISHED_DIR) -> dict[str, list[dict]]:
    """{table: rows} for a paper; a malformed row is a UserError naming file, line and field."""
    tables: dict[str, list[dict]] = {}
    for path in sorted(directory.glob(f"{paper}_table*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in PUBLISHED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"published table {path.name}: missing columns {missing}; expected {list(PUBLISHED_COLUMNS)}")
            for line, row in enumerate(reader, start=2):
                if None in row or any(v is None for v in row.values()):
                    raise UserError(f"published table {path.name} line {line}: wrong number of fields; expected {len(PUBLISHED_COLUMNS)}")
                if row["paper"] != paper:
                    raise UserError(f"published table {path.name} line {line}: paper={row['paper']!r}; valid: {paper!r}")
                for key in ("value", "std"):
                    if row[key].strip():
                        try:
                            float(row[key])
                        except ValueError:
                            raise UserError(f"published table {path.name} line {line}: {key}={row[key]!r} is not a number; "
                                            "valid: a number or empty (not transcribed)") from None
                if not row["metric"].strip():
                    raise UserError(f"published table {path.name} line {line}: metric is empty; valid: a metric name")
                tables.setdefault(row["table"], []).append(row)
    return tables


# ----------------------------------------------------------------------------------------------- runs
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


def write_records(runs: list[Run], out_dir: Path, owners: tuple[str, ...] = PAPERS) -> int:
    """Compact records of finished runs (result.json + metric curves, no checkpoints) into
    results/<owner>/records/<run>.json, so the pages regenerate from a fresh clone without training. The owner is
    the run's report.paper: a paper, or bench.compare's "compare"."""
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
    owner: str | None = None  # the paper (or "compare") whose page lists it; None: the index

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


def method_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    name = m.get("name", "?")
    label = METHOD_LABELS.get(name, name)
    if name == "cola" and not (m.get("knots") or []):
        return "LoRA"  # a chain of length 1 is plain LoRA
    if name == "salora" and m.get("use_lagrangian") is False:
        return "SaLoRA_lambda=0"
    if name == "salora" and float(m.get("beta", 0.1)) == 0.0:
        return "SaLoRA_beta=0"
    return label


def rank_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    ranks = m.get("ranks")
    if m.get("name") in RANKLESS:
        return "–"
    if m.get("name") == "cola" and ranks and len(ranks) == 2:
        return f"{ranks[0]}->{ranks[1]}"
    return str(m.get("r"))


def setting_of(cfg: dict) -> str:
    m = cfg.get("method", {})
    if m.get("name") in ("mora", "remora") and "mora_type" in m:
        return f"operator={m['mora_type']}"
    if m.get("name") == "cola":
        return f"chain length {len(m.get('knots') or []) + 1}"
    return ""


def metric_value(run: Run, paper: str, metric: str, task: str, setting: str) -> float | None:
    """The run's number for a published metric name (None when the run cannot say)."""
    r = run.result
    metrics = r.get("metrics", {})
    if task in (r.get("eval_tasks") or {}):  # one of the tasks a pooled run scored after training (OLoRA Table I)
        metrics = {k[len(task) + 1:]: v for k, v in metrics.items() if k.startswith(f"{task}/")}
    if metric == "char_accuracy":
        step = re.search(r"step=(\d+)", setting)
        if step:
            # The paper's columns are steps of a 1000-step run; other scales read the same fraction of their run.
            target = int(step.group(1)) if run.scale == "paper" else int(step.group(1)) / 1000 * (r.get("steps") or 0)
            logged = {row["step"]: row["char_acc"] for row in run.metrics_rows() if "char_acc" in row}
            if not logged:
                return None
            nearest = min(logged, key=lambda s: abs(s - target))
            return 100 * logged[nearest] if abs(nearest - target) <= 0.05 * max(r.get("steps") or 1, 1) else None
        return 100 * metrics["char_acc"] if "char_acc" in metrics else None
    if metric in ("final_score", "test_accuracy", "accuracy", "ACC"):
        if "gen_acc" in metrics:  # LLM-Adapters' generation protocol, what the commonsense papers report
            return 100 * metrics["gen_acc"]
        if "acc" in metrics:
            return 100 * metrics["acc"]
        if "exact_match" in metrics:
            return 100 * metrics["exact_match"]
        return 100 * metrics["char_acc"] if "char_acc" in metrics else None
    if metric in ("GSM8K", "MATH"):  # MoRA Table 1: the benchmark is the metric's name
        return 100 * metrics["exact_match"] if "exact_match" in metrics else None
    if metric in ("MMLU_0shot", "MMLU_5shot"):
        return 100 * metrics["acc"] if "acc" in metrics else None
    if metric == "glue_dev_score":
        key = GLUE_METRIC.get(r.get("task"), "acc")
        return 100 * metrics[key] if key in metrics else None
    if metric == "SPS":
        return 1 - metrics["density"] if "density" in metrics else None  # a fraction, as the paper's 0.37/0.42/0.43
    if metric in ("perplexity", "PPL"):
        return metrics.get("perplexity")
    if metric == "eval_loss":
        return metrics.get("eval_loss")
    if metric == "trainable_params":
        return r.get("trainable_params")
    if metric == "training_flops":
        # Paper cells: the trainer state's count, as COLA reports it; stand-in blocks: the suite's own, which resolves
        # what a rank step-down saves (records from before trainer_flos existed keep the suite's).
        return r.get("trainer_flos", r.get("train_flops")) if run.scale == "paper" else r.get("train_flops")
    if metric == "training_time":
        return r.get("wall_s")
    return None


SUMMED_OVER_SEEDS = ("training_flops",)   # COLA Table 4 reports the compute of all its seeds together


def fmt(values: list[float], metric: str) -> str:
    if not values:
        return ""
    if metric in SUMMED_OVER_SEEDS:
        return f"{sum(values):.3g} (sum of {len(values)} seeds)"
    big = metric in ("training_flops", "trainable_params")
    mean = statistics.fmean(values)
    text = f"{mean:.3g}" if big else f"{mean:.2f}"
    if len(values) > 1:
        sd = statistics.stdev(values)
        text += f" ± {sd:.2g}" if big else f" ± {sd:.2f}"
    return text


@dataclass
class Layout:
    row_keys: list[tuple]            # (model, method, rank, setting)
    col_keys: list[tuple]            # (task, metric[, setting])
    published: dict[tuple, dict]     # (row, col) -> published row
    setting_in_columns: bool


def layout_of(rows: list[dict]) -> Layout:
    setting_in_columns = any(r["setting"].startswith("step=") for r in rows)
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


def scored_task(run: Run, paper: str, label: str, metric: str = "") -> str | None:
    """The task (registry name) of ``run`` that a column reads: the run's own task or one it scored after training
    (``task.eval_tasks``), whose label is the column's metric (MoRA Table 1: column "mathematical reasoning", metric
    "MATH") or else the column's task; None if neither."""
    names = (run.task_name, *(run.result.get("eval_tasks") or {}))
    for wanted in (metric, label):
        for name in names:
            if wanted and norm(TASK_LABELS[paper].get(name, "")) == norm(wanted):
                return name
    return None


def run_matches(run: Run, paper: str, rk: tuple, ck: tuple, *, by_model: bool) -> bool:
    cfg = run.cfg
    model, method, rank, setting = rk
    task, metric, col_setting = ck
    # A row without a model (the text read does not name one) matches any model, as a "not named" one does.
    if by_model and norm(model) and not norm(model).startswith(UNNAMED_MODEL) \
            and not norm(model).startswith("basemodelnotnamed") and norm(MODEL_LABELS.get(run.model_name, "")) != norm(model):
        return False
    name = cfg.get("method", {}).get("name")
    if norm(method) not in {norm(method_label(cfg)), *map(norm, METHOD_ALIASES.get(name, ()))}:
        return False
    if rank and rank_label(cfg) != rank and not (method == "LoRA" and "->" in rank):
        return False
    if task and scored_task(run, paper, task, metric) is None:
        return False
    op = re.search(r"operator=(\w+)", setting)
    if op and setting_of(cfg) != f"operator={op.group(1)}":
        return False
    size = re.search(r"size=(\S+)", setting)
    if size and by_model and size.group(1).lower() not in MODEL_LABELS.get(cfg["model"]["name"], "").lower():
        return False
    return True


SETTING_NAMES = {"trainer.learning_rate": "lr", "trainer.per_device_train_batch_size": "batch"}


def selected_setting(runs: list[Run]) -> tuple[list[Run], str]:
    """Where an experiment searched a grid (``report.select: {over: [keys], by: metric expression, direction}``),
    the runs of the setting whose mean selection metric over seeds is best, and that setting in words; other
    runs pass through. The paper's protocol: COLA picks lr × batch on its dev split, MoRA's UUID runs report the
    best learning rate of its grid."""
    kept, chosen = [], []
    by_experiment: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_experiment[json.dumps((run.cfg.get("report") or {}).get("select"), sort_keys=True)].append(run)
    for key, group in sorted(by_experiment.items()):
        select = json.loads(key)
        if not select:
            kept += group
            continue
        settings: dict[tuple, list[Run]] = defaultdict(list)
        for run in group:
            settings[tuple(str(config_value(run.cfg, k)) for k in select["over"])].append(run)
        scores = {}
        for setting, members in settings.items():
            values = [metric_of(r.result, r.metrics_rows(), select["by"]) for r in members if r.status == "ok"]
            values = [v for v in values if v is not None]
            if values:
                scores[setting] = statistics.fmean(values)
        if not scores:
            kept += group
            continue
        pick = (min if select.get("direction", "greater") == "less" else max)(sorted(scores), key=scores.__getitem__)
        kept += settings[pick]
        chosen.append(", ".join(f"{SETTING_NAMES.get(k, k.split('.')[-1])} {v}" for k, v in zip(select["over"], pick))
                      + f" of {len(settings)}, by {select['by']}")
    return kept, "; ".join(chosen)


def cell_values(runs: list[Run], paper: str, rk: tuple, ck: tuple, by_model: bool) -> tuple[list[float], int, str]:
    """The cell's values over seeds, its failed runs, and the grid setting picked for it (if its experiment searched one)."""
    values, failed = [], 0
    matched, chosen = selected_setting([run for run in runs if run_matches(run, paper, rk, ck, by_model=by_model)])
    for run in matched:
        if run.status != "ok":
            failed += 1
            continue
        task = (scored_task(run, paper, ck[0], ck[1]) if ck[0] else None) or run.result.get("task", "")
        value = metric_value(run, paper, ck[1], task, ck[2] or rk[3])
        if value is not None and math.isfinite(value):
            values.append(float(value))
    return values, failed, chosen


def derived_metric(ck: tuple) -> bool:
    return ck[1] in ("relative_gain_pct", "test_accuracy_gain_points")


def render_table(paper: str, table: str, layout: Layout, runs: list[Run], scale_runs: list[Run]) -> tuple[str, list[dict]]:
    """Markdown + CSV rows of one table: the published layout with reproduced beside published."""
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
                cells[(rk, ck)] = cell_values(runs, paper, rk, ck, by_model=True)
    for (rk, ck), (vals, _, _) in cells.items():  # the winner per (model, rank, column), by the paper's convention
        if vals:
            key = (rk[0], rk[2], ck)
            contenders[key] += 1
            mean = statistics.fmean(vals)
            better = (lambda a, b: a < b) if ck[1] in LOWER_IS_BETTER else (lambda a, b: a > b)
            if key not in best or better(mean, best[key]):
                best[key] = mean
    for rk in layout.row_keys:
        out = []
        for ck in layout.col_keys:
            pub = layout.published.get((rk, ck))
            if pub is None:
                out.append("")
                continue
            published = pub["value"] or "n/a"
            if pub["value"] and pub["std"]:
                published += f" ± {pub['std']}"
            if derived_metric(ck):
                reproduced = "derived"
            else:
                vals, failed, chosen = cells[(rk, ck)]
                reproduced = fmt(vals, ck[1]) or ("failed" if failed else "not run")
                if vals and chosen:
                    reproduced += f" [{chosen}]"
                key = (rk[0], rk[2], ck)
                if vals and contenders[key] > 1 and best[key] == statistics.fmean(vals):
                    reproduced = f"**{reproduced}**"
            out.append(f"{reproduced} / {published}")
            csv_rows.append({"model": rk[0], "method": rk[1], "rank": rk[2], "setting": rk[3] or ck[2], "task": ck[0],
                             "metric": ck[1], "reproduced": reproduced.strip("*"), "published": published,
                             "published_status": pub["status"], "source": pub["source"] or pub["primary_url"]})
        lines.append(f"| {rk[0] or 'not named (any model)'} | {rk[1]} | {rk[2] or '–'} | {rk[3] or '–'} | " + " | ".join(out) + " |")
    md = "\n".join(lines)
    md += "\n\nCells read *reproduced / published*. Reproduced = runs of the paper's own model at scale=paper " \
          "(mean ± std over seeds); \"not run\" = no such run here; \"failed\" = its runs failed (see error.json); " \
          "published \"n/a\" = not transcribed (never invented). Winners per the paper's convention in bold."
    if any(ck[1] in SUMMED_OVER_SEEDS for ck in layout.col_keys):
        md += ("\n\nTraining FLOPs: reproduced cells read the trainer state's `total_flos` (HF's 6 × parameters × "
               "tokens), as the paper does, summed over seeds; the stand-in block below reads the suite's count "
               "(forward, input gradients, and weight gradients of the trained parameters only), which is what sees "
               "a rank step-down's saving.")
    md += "\n\n" + render_scale_table(paper, layout, scale_runs)
    return md, csv_rows


def render_scale_table(paper: str, layout: Layout, runs: list[Run]) -> str:
    """The same columns at the scale the runs were made at, one row per (stand-in model, method, rank, setting)."""
    if not runs:
        return "_No runs at a smaller scale feed this table yet._"
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        cfg = run.cfg
        groups[(MODEL_LABELS.get(run.model_name, run.model_name),
                method_label(cfg), rank_label(cfg), setting_of(cfg))].append(run)
    cols = [ck for ck in layout.col_keys if not derived_metric(ck)]
    task_of = {ck: ck[0] for ck in cols}
    # A stand-in task none of the paper's columns names (the corpus standing in for GLUE) gets its own eval-loss
    # column, so the rows it feeds are not empty.
    shown = {norm(task) for task in task_of.values() if task}
    for name in sorted({run.task_name for run in runs if run.status == "ok" and "eval_loss" in run.result.get("metrics", {})}):
        if norm(TASK_LABELS[paper].get(name, "")) not in shown:
            ck = (f"{name} (stand-in task)", "eval_loss", "")
            cols.append(ck)
            task_of[ck] = TASK_LABELS[paper].get(name) or name
    lines = [f"At scale={runs[0].scale} (stand-in models; read against each other, not against the paper's numbers):", "",
             "| model | method | rank | setting | " + " | ".join(" ".join(x for x in (c[0], c[2], f'({c[1]})') if x) for c in cols) + " |",
             "|" + "---|" * (4 + len(cols))]
    for key in sorted(groups):
        model, method, rank, setting = key
        out = []
        for ck in cols:
            vals, failed = [], 0
            for run in groups[key]:
                label = TASK_LABELS[paper].get(run.task_name) or run.task_name
                scored = scored_task(run, paper, task_of[ck], ck[1]) if task_of[ck] else None
                if task_of[ck] and norm(label) != norm(task_of[ck]) and scored is None:
                    continue
                if run.status != "ok":
                    failed += 1
                    continue
                v = metric_value(run, paper, ck[1], scored or "", ck[2] or setting)
                if v is not None and math.isfinite(v):
                    vals.append(float(v))
            out.append(fmt(vals, ck[1]) or ("failed" if failed else "–"))
        if any(o != "–" for o in out):
            lines.append(f"| {model} | {method} | {rank} | {setting or '–'} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def runs_for(runs: list[Run], paper: str, table: str) -> list[Run]:
    return [r for r in runs if r.tags[0] == paper and r.feeds(table)]


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def claim_outcomes(paper: str, runs: list[Run]) -> list[Outcome]:
    """Each claim of the paper's spec, tested on the runs of its tier (paired over seeds, 95% interval)."""
    spec = paper_specs.load(paper)
    tier_runs = [r for r in runs if r.status == "ok" and r.scale == spec.claims_tier]
    outcomes = []
    for claim in spec.claims:
        values = paired_values(claim, tier_runs, lambda run: metric_of(run.result, run.metrics_rows(), claim.metric),
                               lambda run: run.cfg)
        outcomes.append(evaluate_claim(claim, values))
    return outcomes


def render_claims(paper: str, outcomes: list[Outcome], ran: set[str]) -> list[str]:
    spec = paper_specs.load(paper)
    lines = [f"## Claims, tested at scale={spec.claims_tier}", "",
             "Each claim: the paired difference over seeds (same seed = same data and initialisation for both arms) "
             "or, for one arm, the value itself; mean with its 95% t-interval. **held**: the interval lies on the "
             "paper's side of the margin; **contradicted**: on the other side; **inconclusive**: it spans it (with "
             "the pairs that would resolve the observed effect at its observed spread).", "",
             "| claim | source | metric | arms | effect [95% CI] | n | verdict |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.claim
        side = {"greater": ">", "less": "<", "within": "within ±"}[c.direction]
        arms = " − ".join(c.arm_labels) if c.arm_labels else "–"
        verdict = f"**{o.verdict}**"
        if o.verdict == "inconclusive":
            verdict += (f" (~{o.seeds_to_resolve} pairs would resolve it)" if o.seeds_to_resolve
                        else " (no runs)" if o.n == 0 else " (no effect to resolve)")
        lines.append(f"| {c.statement} | {c.source} | {c.metric} ({c.unit}), {side} {c.margin:g} | {arms} | "
                     f"{o.effect} | {o.n} | {verdict} |")
    missing = [e for e in spec.experiment_files(spec.claims_tier) if e not in ran]
    if missing:
        lines += ["", f"**Not run for these records:** {', '.join(missing)} — part of `make reproduce-{paper}`, but no "
                  f"record of it is committed yet; the claims it tests read \"no runs\"."]
    stand_ins = sorted({o.claim.stand_in for o in outcomes if o.claim.stand_in})
    if stand_ins:
        lines += ["", "Stand-ins (what the small tier runs instead of the paper's setting): " + "; ".join(stand_ins) + "."]
    if spec.notes:
        lines += ["", "What the small tier does not cover, and why:", ""] + [f"- {n}" for n in spec.notes]
    return lines + [""]


def render_excluded(excluded: list[Excluded], heading: str = "") -> list[str]:
    if not excluded:
        return []
    title = f"Excluded records ({len(excluded)})"
    return ["", f"{heading} {title}" if heading else f"**{title}**", "",
            "`python -m bench.report --allow-missing` wrote this page without them; every number here is computed "
            "from the others:", ""] + [
        f"- `{e.path.name}`: {e.reason}" for e in excluded]


def report_paper(paper: str, runs: list[Run], out_dir: Path, excluded: list[Excluded] = ()) -> dict[str, Any]:
    from . import report_figures as figures

    spec = paper_specs.load(paper)
    paper_dir = out_dir / paper
    paper_dir.mkdir(parents=True, exist_ok=True)
    tables = load_published(paper)
    index: dict[str, Any] = {"tables": [], "figures": [], "failed": []}
    scale_runs: list[Run] = []
    sections = []
    for table, rows in tables.items():
        table_runs = runs_for(runs, paper, table)
        paper_scale = [r for r in table_runs if r.scale == "paper"]
        small = [r for r in table_runs if r.scale != "paper"]
        layout = layout_of(rows)
        md, csv_rows = render_table(paper, table, layout, paper_scale, small)
        title = f"{PAPER_TITLES[paper].split(':')[0]} Table {table}"
        atomic_write_text(paper_dir / f"table{table}.md", f"# {title}\n\n{md}\n")
        write_csv(paper_dir / f"table{table}.csv", csv_rows)
        index["tables"].append(f"table{table}.md")
        sections.append(f"## Table {table}\n\n{md}\n")
        index["failed"] += [run.name for run in table_runs if run.status == "failed"]
        scale_runs += [r for r in small if r.status == "ok"]
    selected = [r for r in runs if r.tags[0] == paper and r.status == "ok"]
    for name, func in spec.figures.items():
        if getattr(figures, func)(selected, paper_dir / f"{name}.png"):
            index["figures"].append(f"{name}.png")
            sections.append(f"## {name}\n\n![{name}]({name}.png)\n")
        else:  # no runs draw it any more: a stale picture would show numbers no record backs
            (paper_dir / f"{name}.png").unlink(missing_ok=True)
    outcomes = claim_outcomes(paper, selected)
    head = [f"# {PAPER_TITLES[paper]}", "", "Regenerated by `python -m bench.report` from the run records in "
            "[records/](records/); never edited by hand.", ""]
    head += render_claims(paper, outcomes, {r.experiment for r in selected if r.experiment})
    if index["failed"]:
        head += ["", "Failed runs (their cells read \"failed\"): " + ", ".join(sorted(index["failed"]))]
    head += render_excluded(list(excluded))
    index["scale"] = describe_scales(scale_runs)
    head += ["", "Scale of the reproduced numbers: " + ("; ".join(index["scale"]) or "no runs"), ""]
    head += [describe_compute(selected), "", describe_code(selected), ""]
    atomic_write_text(paper_dir / "README.md", "\n".join(head) + "\n" + "\n".join(sections))
    index["verdicts"] = [o.verdict for o in outcomes]
    return index


def _span(values: list) -> str:
    values = sorted({v for v in values if v is not None})
    return "?" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def describe_scales(runs: list[Run]) -> list[str]:
    """One line per (scale, model, task, steps); example counts as their range over seeds (held-out draws differ)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        r = run.result
        groups.setdefault((run.scale, str(r.get("model")), str(r.get("task")), r.get("steps") or 0), []).append(r)
    return [f"{scale}: {model} on {task}, {_span([r.get('examples', {}).get('train') for r in rs])} train / "
            f"{_span([r.get('examples', {}).get('eval') for r in rs])} eval examples, {steps} steps"
            for (scale, model, task, steps), rs in sorted(groups.items())]


def describe_compute(runs: list[Run]) -> str:
    """What the records cost, from each run's own wall time: the budget a re-run needs, per experiment."""
    per_experiment: dict[str, list[float]] = {}
    for run in runs:
        per_experiment.setdefault(run.experiment or "unnamed", []).append(float(run.result.get("wall_s") or 0.0))
    if not per_experiment:
        return "Compute behind these records: none."
    total = sum(map(sum, per_experiment.values()))
    parts = ", ".join(f"{name} {len(ws)} runs / {sum(ws) / 60:.1f} min" for name, ws in sorted(per_experiment.items()))
    return (f"Compute behind these records: {sum(map(len, per_experiment.values()))} runs, {total / 60:.1f} run-minutes "
            f"(the sum of each run's wall time; `make reproduce` runs two at a time on 2 cores): {parts}.")


def describe_code(runs: list[Run]) -> str:
    """Which commits produced the records (each run's git_sha): a row trained by older code says so here."""
    counts: dict[str, int] = {}
    for run in runs:
        sha = str(run.result.get("git_sha") or "unknown")[:7]
        counts[sha] = counts.get(sha, 0) + 1
    if not counts:
        return "Code behind these records: none."
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = ", ".join(f"{sha} ({n} run{'' if n == 1 else 's'})" for sha, n in ordered)
    return f"Code behind these records (each run's commit, `git show <commit>`): {parts}."


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


def main(argv: Iterable[str] | None = None) -> None:
    parser = one_line_parser("python -m bench.report", __doc__.splitlines()[0])
    parser.add_argument("--paper", choices=PAPERS, action="append", help="only this paper (repeatable)")
    parser.add_argument("--runs", default=os.environ.get("LORABENCH_RUNS", "runs"),
                        help="runs directory: its finished runs become records in --out first (skipped if absent)")
    parser.add_argument("--out", default="results", help="output directory (holds <paper>/records/)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the pages even if some records cannot be used (each page lists them)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out={args.out!r} is a file; valid: a directory")
        papers = args.paper or list(PAPERS)
        runs_dir = Path(args.runs)
        runs, excluded, synced = gather(runs_dir, out, papers, args.allow_missing)
        if not any(runs.values()):
            raise UserError(f"no run records for {', '.join(papers)} in {out} and none finished in --runs={args.runs!r}; "
                            "train first (make reproduce) — nothing was written")
        summaries = {p: report_paper(p, runs[p], out, [e for e in excluded if e.owner == p]) for p in papers}
        write_index(out, summaries, papers, [e for e in excluded if e.owner is None])
        print(f"report: {out / 'README.md'} ({sum(map(len, runs.values()))} records, {synced} new from {runs_dir})")
    except UserError as err:
        report_and_exit(err)
    except OSError as err:  # a read-only or full --out: one line; atomic writes leave every file whole
        report_and_exit(UserError(f"--out={args.out!r}: cannot write {err.filename or args.out} ({err.strerror}); "
                                  "valid: a directory you can write"))


def write_index(out: Path, summaries: dict[str, dict], papers: list[str], excluded: list[Excluded] = ()) -> None:
    index_path = out / "README.md"
    previous = {}
    if index_path.exists():  # keep other papers' entries when one paper is re-reported
        for block in index_path.read_text().split("\n## ")[1:]:
            previous[block.split("\n", 1)[0].strip()] = "## " + block.rstrip() + "\n"
    blocks = dict(previous)
    for paper in papers:
        s = summaries[paper]
        counts = {v: s["verdicts"].count(v) for v in ("held", "contradicted", "inconclusive")}
        lines = [f"## {paper}", "", f"{PAPER_TITLES[paper]} — [{paper}/README.md]({paper}/README.md)", "",
                 f"Claims: {counts['held']} held, {counts['contradicted']} contradicted, {counts['inconclusive']} "
                 f"inconclusive (of {len(s['verdicts'])}; 95% intervals over seeds).", "",
                 "Tables: " + ", ".join(f"[{t}]({paper}/{t})" for t in s["tables"]),
                 "Figures: " + (", ".join(f"[{f}]({paper}/{f})" for f in s["figures"]) or "none yet"), "",
                 "Scale: " + ("; ".join(sorted(s["scale"])) or "no runs"), ""]
        blocks[paper] = "\n".join(lines)
    body = ["# Results", "", "Generated by `python -m bench.report` from the run records (`make report`); never edited by hand.",
            "Every number states its scale; small- and tiny-scale numbers come from stand-in models and are not comparable "
            "to the papers'. Verdicts: held / contradicted / inconclusive from paired differences over seeds.",
            "Performance: [perf.md](perf.md). Every method on every paper's task family at equal budgets: "
            "[compare/README.md](compare/README.md) (`make compare`).", ""]
    body += [blocks[p] for p in PAPERS if p in blocks]
    body += render_excluded(list(excluded), heading="##")
    atomic_write_text(index_path, "\n".join(body).rstrip() + "\n")


if __name__ == "__main__":
    main()
