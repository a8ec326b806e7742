"""MMLU (MoRA Table 1's instruction-tuning column): lm-eval's ``mmlu`` at 0 and 5 shots after training on Tülu v2.

Two registry entries, one per shot count, so a run scores both (``task.eval_tasks``). At paper scale lm-eval's
built-in group runs (its own prompts, all 57 subjects of cais/mmlu's test split); locally the examples are written
as a run-local lm-eval task in lm-eval's MMLU prompt form ("question / A. … / Answer:", choices " A" … " D").
"""

from __future__ import annotations

from .registry import TaskSpec, register
from .synthetic import largest_number_question

LETTERS = "ABCD"


def mmlu(record: dict) -> dict:
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, record["choices"]))
    return {"prompt": f"{record['question'].strip()}\n{options}\nAnswer:",
            "candidates": [f" {letter}" for letter in LETTERS[:len(record["choices"])]], "label": int(record["answer"])}


for shots in (0, 5):
    register(TaskSpec(name=f"mmlu_{shots}shot", family="mmlu", kind="choice", paper="mora", metric="acc",
                      scorer="lm-eval:mmlu", hub_dataset="cais/mmlu", hub_config="all",
                      hub_splits={"eval": "test"}, lm_eval_task="mmlu", num_fewshot=shots,
                      local_fields=("question", "choices", "answer"), hub_fields=("question", "choices", "answer"),
                      convert_local=mmlu, convert_hub=mmlu, generator=largest_number_question))
