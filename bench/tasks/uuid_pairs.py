"""UUID memorization (MoRA §3, Table 2 / Fig. 3): seeded random (key, value) UUID pairs; the model learns to
output the value given the key; scored by character-level accuracy of the greedy continuation."""

from __future__ import annotations

import uuid

import numpy as np

from .registry import TaskSpec, register

PROMPT = "{key}:"


def uuid_pairs(n: int, seed: int) -> list[dict]:
    rng = np.random.RandomState(seed)
    make = lambda: str(uuid.UUID(bytes=rng.bytes(16), version=4))
    return [{"key": make(), "value": make()} for _ in range(n)]


def to_example(record: dict) -> dict:
    return {"prompt": PROMPT.format(key=record["key"]), "answer": record["value"]}


def generate(role: str, n: int, seed: int) -> list[dict]:
    # Memorization: the eval set is the training set itself.
    return uuid_pairs(n, seed)


register(TaskSpec(name="uuid", family="uuid", kind="sft", paper="mora", metric="char_acc", scorer="suite:uuid_char_acc", memorization=True,
                  local_fields=("key", "value"), convert_local=to_example, generator=generate))
