"""lm-evaluation-harness on the in-memory model, fully offline for local data.

For local or tiny data the suite writes the selected examples (already in canonical form) to a jsonl and an
lm-eval YAML task beside it with an absolute ``data_files`` path, then loads it through
``TaskManager(include_path=...)``; at paper scale the built-in task names are used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .records import atomic_write_text

TASK_YAML = """\
# Written by lorabench for run-local evaluation: the examples the run selected, in canonical form.
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{candidates}}}}"
doc_to_target: label
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_choice_task(out_dir: Path, task: str, examples: list[dict]) -> str:
    """A multiple-choice lm-eval task over ``examples`` ({prompt, candidates, label}); returns its name."""
    out_dir = Path(out_dir).resolve()
    name = f"lorabench_{task}"
    data = out_dir / f"{name}.jsonl"
    rows = [{"prompt": e["prompt"], "candidates": list(e["candidates"]), "label": int(e["label"])} for e in examples]
    atomic_write_text(data, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out_dir / f"{name}.yaml", TASK_YAML.format(name=name, data=data))
    return name


def run_lm_eval(model, tokenizer, task: str, include_path: Path | None, batch_size: int,
                num_fewshot: int | None = None) -> dict[str, Any]:
    """acc / acc_norm with stderr, the task version and the sample count, for one task (or group, as MMLU).
    ``num_fewshot``: examples shown before each question (a run-local task draws them from its own examples,
    never the question itself)."""
    if include_path is not None:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    # include_defaults=False skips indexing lm-eval's thousands of built-in YAMLs (~20 s) when only ours are used
    manager = TaskManager(include_path=str(include_path), include_defaults=False) if include_path else TaskManager()
    out = simple_evaluate(model=lm, tasks=[task], task_manager=manager, log_samples=False, bootstrap_iters=1000,
                          num_fewshot=num_fewshot)
    res = out["results"][task]
    metrics = {}
    for key, value in res.items():
        if "," in key and isinstance(value, (int, float)):
            metrics[key.split(",")[0]] = float(value)
    return {"metrics": metrics, "task": task, "version": out["versions"].get(task),
            "n": out.get("n-samples", {}).get(task, {}).get("effective")}
