"""A run's number for a published metric name. A paper's spec maps each metric name its tables use to a reader
(``TableRules.metrics``); the readers here are the common shapes, and ``eval_loss`` is read for every paper (the
stand-in block's column for a task no published column names). A name no reader knows reads None: "not run"."""

from __future__ import annotations

from typing import Callable

from .records import Run

# (the run, its metrics for the column's task, the cell's setting) -> the number, or None when the run cannot say
Reader = Callable[[Run, dict, str], "float | None"]


def percent(*keys: str) -> Reader:
    """100 × the first of ``keys`` the run has (a fraction in the record, a percentage in the paper)."""
    def read(run: Run, metrics: dict, setting: str) -> float | None:
        for key in keys:
            if key in metrics:
                return 100 * metrics[key]
        return None
    return read


def percent_mean(*keys: str) -> Reader:
    """100 × the unweighted mean of ``keys`` (MoRA's continual-pretraining columns: the mean of a domain's task
    metrics); None unless the run has every one of them."""
    def read(run: Run, metrics: dict, setting: str) -> float | None:
        if not keys or any(metrics.get(key) is None for key in keys):
            return None
        return 100 * sum(float(metrics[key]) for key in keys) / len(keys)
    return read


def value(key: str) -> Reader:
    """The metric as recorded."""
    return lambda run, metrics, setting: metrics.get(key)


def result(key: str) -> Reader:
    """A field of the run's result.json (trainable_params, wall_s, …) rather than of its metrics."""
    return lambda run, metrics, setting: run.result.get(key)


# An accuracy as the papers print it: LLM-Adapters' generation accuracy (the option the model names in its answer,
# the commonsense papers' protocol) where a run has it, else lm-eval's acc, exact match, character accuracy.
ACCURACY = percent("gen_acc", "acc", "exact_match", "char_acc")
COMMON = {"eval_loss": value("eval_loss")}


def scored_metrics(run: Run, task: str) -> dict:
    """The run's metrics for ``task``: its own, or those of a task it scored after training (``task.eval_tasks``:
    one run trained on a pooled collection and scored on several benchmarks), stored as ``<task>/<metric>``."""
    metrics = run.result.get("metrics", {})
    if task in (run.result.get("eval_tasks") or {}):
        metrics = {k[len(task) + 1:]: v for k, v in metrics.items() if k.startswith(f"{task}/")}
    return metrics


def metric_value(run: Run, readers: dict[str, Reader], metric: str, task: str, setting: str) -> float | None:
    """The run's number for a published metric name (None when the run cannot say)."""
    reader = readers.get(metric) or COMMON.get(metric)
    return reader(run, scored_metrics(run, task), setting) if reader else None
