"""Instruction tuning and math reasoning (MoRA Table 1, SaLoRA): Alpaca-format SFT; MetaMath → GSM8K and MATH;
Tülu v2 (scored on MMLU, bench/tasks/mmlu.py)."""

from __future__ import annotations

import re

from .commonsense import ALPACA_HEADER
from .registry import TaskSpec, register
from .synthetic import arithmetic, boxed_arithmetic, conversation


def alpaca(record: dict) -> dict:
    instruction = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    return {"prompt": ALPACA_HEADER.format(instruction=instruction), "answer": record["output"]}


def gsm8k(record: dict) -> dict:
    return {"prompt": ALPACA_HEADER.format(instruction=record["question"]), "answer": record["answer"]}


def metamath(record: dict) -> dict:
    return {"prompt": ALPACA_HEADER.format(instruction=record["query"]), "answer": record["response"]}


def math_problem(record: dict) -> dict:
    """Hendrycks MATH: the worked solution ends in a \\boxed{} answer (what the scorer compares)."""
    return {"prompt": ALPACA_HEADER.format(instruction=record["problem"]), "answer": record["solution"]}


# open-instruct's message format, which MoRA's authors tokenised Tülu v2 with (published_setup_facts.csv).
TULU_ROLES = {"system": "<|system|>\n", "user": "<|user|>\n", "assistant": "<|assistant|>\n"}


def tulu(record: dict) -> dict:
    """A conversation → (everything before its last assistant turn, that turn). Choice: the loss is on the last
    assistant turn; open-instruct trains on every assistant turn of a multi-turn conversation (the alternative)."""
    messages = list(record["messages"])
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = "".join(f"{TULU_ROLES[m['role']]}{m['content'].strip()}\n" for m in messages[:last])
    return {"prompt": prompt + TULU_ROLES["assistant"], "answer": messages[last]["content"].strip()}


def final_number(text: str) -> str | None:
    """GSM8K's gold is after '####'; a model's answer is its last number."""
    if "####" in text:
        text = text.split("####")[-1]
    numbers = re.findall(r"-?\d[\d,]*\.?\d*", text)
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


register(TaskSpec(name="alpaca", family="instruct", kind="sft", paper="mora,salora", metric="eval_loss",
                  scorer="suite:eval_loss", hub_dataset="yahma/alpaca-cleaned", hub_splits={"train": "train", "eval": "train"},
                  local_fields=("instruction", "output"), hub_fields=("instruction", "output"),
                  convert_local=alpaca, convert_hub=alpaca))
register(TaskSpec(name="gsm8k", family="instruct", kind="sft", paper="mora", metric="exact_match",
                  scorer="suite:gsm8k_exact_match", hub_dataset="openai/gsm8k", hub_config="main",
                  hub_splits={"train": "train", "eval": "test"}, lm_eval_task="gsm8k",
                  local_fields=("question", "answer"), hub_fields=("question", "answer"),
                  convert_local=gsm8k, convert_hub=gsm8k))
register(TaskSpec(name="metamath", family="instruct", kind="sft", paper="mora", metric="exact_match",
                  scorer="suite:gsm8k_exact_match", hub_dataset="meta-math/MetaMathQA",
                  hub_splits={"train": "train"}, eval_from="gsm8k", local_fields=("query", "response"), hub_fields=("query", "response"),
                  convert_local=metamath, convert_hub=metamath, generator=arithmetic))
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")
register(TaskSpec(name="math", family="instruct", kind="sft", paper="mora", metric="exact_match",
                  scorer="suite:math_exact_match", hub_dataset="EleutherAI/hendrycks_math", hub_config=MATH_SUBJECTS,
                  hub_splits={"train": "train", "eval": "test"}, local_fields=("problem", "solution"),
                  hub_fields=("problem", "solution"), convert_local=math_problem, convert_hub=math_problem,
                  generator=boxed_arithmetic))
register(TaskSpec(name="tulu_v2", family="instruct", kind="sft", paper="mora", metric="eval_loss",
                  scorer="suite:eval_loss", hub_dataset="allenai/tulu-v2-sft-mixture",
                  hub_splits={"train": "train", "eval": "train"}, local_fields=("messages",), hub_fields=("messages",),
                  convert_local=tulu, convert_hub=tulu, generator=conversation))
