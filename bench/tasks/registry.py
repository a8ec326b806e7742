"""The task registry: every dataset the four papers use, its schema, loader, template, metric and scorer.

A task turns raw records (hub or local file, original schema) into canonical examples:
  sft    {"prompt", "answer"} (+ "candidates", "label" when it is scored by choice)
  choice {"prompt", "candidates", "label"}       MeZO-style classification by option log-prob
  lm     {"text"}                                 language-model pretraining
  cls    {"text", "text_pair", "label"}           encoder sequence classification
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str
    kind: str                      # sft | choice | lm | cls
    paper: str                     # which paper's tables use it
    metric: str                    # the headline metric
    scorer: str                    # who computes it: lm-eval task name or the suite's scorer
    hub_dataset: str | None = None
    hub_config: str | tuple[str, ...] | None = None         # several: their splits concatenated (MATH's subjects)
    hub_splits: dict[str, str] = field(default_factory=dict)   # role (train/eval) -> hub split
    lm_eval_task: str | None = None
    num_fewshot: int | None = None                             # lm-eval's shots (MMLU 0- and 5-shot)
    local_fields: tuple[str, ...] = ()                         # fields a local file must have
    hub_fields: tuple[str, ...] = ()
    local_columns: tuple[str, ...] | None = None               # header-less tsv columns
    local_header: bool = True
    convert_local: Converter | None = None
    convert_hub: Converter | None = None
    num_labels: int | None = None
    expand: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None  # one record → several (MultiRC)
    eval_from: str | None = None                               # evaluate on another task's eval split (MetaMath → GSM8K)
    generator: Callable[..., list[dict]] | None = None         # seeded data: the task itself (uuid), or a tiny-scale
                                                               # stand-in in the real schema where no sample exists
    stream: bool = False                                       # the hub's train split is streamed, never materialised
                                                               # (C4); its eval split is a fixed first-N slice
    memorization: bool = False                                 # eval = train on purpose (UUID); exempt from the
                                                               # train/eval text-overlap check
    unavailable: str | None = None                             # why its data is not public (a financial news corpus
                                                               # never released): reading it is one UserError saying so
    # k-shot prompting from a demonstration pool (MMLU: each subject's dev split, hub_splits["shots"]; a local file: its
    # own other questions): (eval examples, converted pool) -> the eval examples with their demonstrations
    shots: Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[dict[str, Any]]] | None = None


def evaluation_only(spec: TaskSpec) -> bool:
    """A benchmark with no training split (MMLU): it is scored after training (task.eval_tasks), never trained on."""
    return spec.hub_dataset is not None and "train" not in spec.hub_splits


def shared_text(example: dict[str, Any]) -> str:
    """The text an example shares with its siblings: MultiRC's passage (many questions per passage), else the
    whole prompt/text. A held-out split keeps every example of one such text on one side."""
    if example.get("group") or example.get("prompt"):
        return str(example.get("group") or example.get("prompt"))
    return "\n".join(str(example.get(k) or "") for k in ("text", "text_pair"))


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec
