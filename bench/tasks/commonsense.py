"""Commonsense reasoning (OLoRA Table I, after LLM-Adapters): SFT on the LLM-Adapters json format, scored by
choosing the answer whose completion the model finds most likely; lm-eval's built-in tasks at paper scale."""

from __future__ import annotations

import re

from .registry import TaskSpec, register
from .synthetic import commonsense as synthetic_choice

ALPACA_HEADER = ("Below is an instruction that describes a task. Write a response that appropriately "
                 "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
RESPONSE = "the correct answer is {choice}"


def _options(instruction: str, answer: str) -> list[str]:
    if answer in ("true", "false"):
        return ["true", "false"]
    for stem in ("answer", "solution", "option", "ending"):
        n = len(re.findall(rf"\b{stem.capitalize()}(\d+)\s*:", instruction))
        if answer.startswith(stem) and n:
            return [f"{stem}{i}" for i in range(1, n + 1)]
    raise ValueError(f"cannot find the options of answer {answer!r} in the instruction")


def from_llm_adapters(record: dict) -> dict:
    """LLM-Adapters: {"instruction", "input", "output", "answer"}; the options are listed in the instruction."""
    instruction = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    answer = str(record["answer"]).strip()
    options = _options(record["instruction"], answer)
    return {
        "prompt": ALPACA_HEADER.format(instruction=instruction),
        "answer": record.get("output") or RESPONSE.format(choice=answer),
        "candidates": [RESPONSE.format(choice=o) for o in options],
        "options": options,   # the names LLM-Adapters' generation scorer looks for in the generated text
        "label": options.index(answer),
    }


def _listed(question: str, choices: list[str], stem: str = "answer") -> dict:
    lines = "\n".join(f"{stem.capitalize()}{i + 1}: {c}" for i, c in enumerate(choices))
    fmt = "/".join(f"{stem}{i + 1}" for i in range(len(choices)))
    return {"instruction": f"Please choose the correct answer to the question: {question}\n\n{lines}\n\nAnswer format: {fmt}"}


def arc_from_hub(record: dict) -> dict:
    """allenai/ai2_arc: question, choices{text, label}, answerKey → the LLM-Adapters form."""
    labels = list(record["choices"]["label"])
    item = _listed(record["question"], list(record["choices"]["text"]))
    return from_llm_adapters({**item, "answer": f"answer{labels.index(record['answerKey']) + 1}"})


def obqa_from_hub(record: dict) -> dict:
    labels = list(record["choices"]["label"])
    item = _listed(record["question_stem"], list(record["choices"]["text"]))
    return from_llm_adapters({**item, "answer": f"answer{labels.index(record['answerKey']) + 1}"})


def boolq_from_hub(record: dict) -> dict:
    instruction = (f"Please answer the following question with true or false, question: {record['question']}?"
                   "\n\nAnswer format: true/false")
    return from_llm_adapters({"instruction": instruction, "answer": "true" if record["answer"] else "false"})


def piqa_from_hub(record: dict) -> dict:
    item = _listed(record["goal"], [record["sol1"], record["sol2"]], stem="solution")
    return from_llm_adapters({**item, "answer": f"solution{int(record['label']) + 1}"})


def hellaswag_from_hub(record: dict) -> dict:
    item = _listed(record["ctx"], list(record["endings"]), stem="ending")
    return from_llm_adapters({**item, "answer": f"ending{int(record['label']) + 1}"})


LLM_ADAPTERS_FIELDS = ("instruction", "answer")
COMMON = dict(family="commonsense", kind="sft", paper="olora", metric="acc", local_fields=LLM_ADAPTERS_FIELDS,
              convert_local=from_llm_adapters)

register(TaskSpec(name="arc_easy", scorer="lm-eval:arc_easy", hub_dataset="allenai/ai2_arc", hub_config="ARC-Easy",
                  hub_splits={"train": "train", "eval": "test"}, lm_eval_task="arc_easy",
                  hub_fields=("question", "choices", "answerKey"), convert_hub=arc_from_hub, **COMMON))
register(TaskSpec(name="arc_challenge", scorer="lm-eval:arc_challenge", hub_dataset="allenai/ai2_arc",
                  hub_config="ARC-Challenge", hub_splits={"train": "train", "eval": "test"},
                  lm_eval_task="arc_challenge", hub_fields=("question", "choices", "answerKey"),
                  convert_hub=arc_from_hub, **COMMON))
register(TaskSpec(name="boolq", scorer="lm-eval:boolq", hub_dataset="google/boolq",
                  hub_splits={"train": "train", "eval": "validation"}, lm_eval_task="boolq",
                  hub_fields=("question", "answer"), convert_hub=boolq_from_hub, **COMMON))
register(TaskSpec(name="openbookqa", scorer="lm-eval:openbookqa", hub_dataset="allenai/openbookqa", hub_config="main",
                  hub_splits={"train": "train", "eval": "test"}, lm_eval_task="openbookqa",
                  hub_fields=("question_stem", "choices", "answerKey"), convert_hub=obqa_from_hub, **COMMON))
register(TaskSpec(name="piqa", scorer="lm-eval:piqa", hub_dataset="baber/piqa",
                  hub_splits={"train": "train", "eval": "validation"}, lm_eval_task="piqa",
                  hub_fields=("goal", "sol1", "sol2", "label"), convert_hub=piqa_from_hub,
                  generator=synthetic_choice(2, "solution"), **COMMON))
register(TaskSpec(name="hellaswag", scorer="lm-eval:hellaswag", hub_dataset="Rowan/hellaswag",
                  hub_splits={"train": "train", "eval": "validation"}, lm_eval_task="hellaswag",
                  hub_fields=("ctx", "endings", "label"), convert_hub=hellaswag_from_hub,
                  generator=synthetic_choice(4, "ending"), **COMMON))

# LLM-Adapters' pooled commonsense collection (the eight tasks' training questions, ~170k, ordered by task: a subset is
# drawn at random, never the first N). OLoRA trains the smaller models once on ~50k of it and scores each benchmark
# (task.eval_tasks); its own held-out slice gives the eval-loss curve. Locally: the shared tasks' train files pooled.
register(TaskSpec(name="commonsense_170k", family="instruct", kind="sft", paper="olora", metric="eval_loss",
                  scorer="suite:eval_loss", hub_dataset="zwhe99/commonsense_170k",
                  hub_splits={"train": "train", "eval": "train"}, hub_fields=LLM_ADAPTERS_FIELDS,
                  local_fields=LLM_ADAPTERS_FIELDS, convert_local=from_llm_adapters, convert_hub=from_llm_adapters))
