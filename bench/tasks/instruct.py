"""Instruction tuning and math reasoning (MoRA Table 1, SaLoRA): Alpaca-format SFT; MetaMath → GSM8K."""

from __future__ import annotations

import re

from .commonsense import ALPACA_HEADER
from .registry import TaskSpec, register
from .synthetic import arithmetic


def alpaca(record: dict) -> dict:
    instruction = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    return {"prompt": ALPACA_HEADER.format(instruction=instruction), "answer": record["output"]}


def gsm8k(record: dict) -> dict:
    return {"prompt": ALPACA_HEADER.format(instruction=record["question"]), "answer": record["answer"]}


def metamath(record: dict) -> dict:
    return {"prompt": ALPACA_HEADER.format(instruction=record["query"]), "answer": record["response"]}


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
