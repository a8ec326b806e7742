"""Seeded stand-ins, in each task's real schema, for tasks with no local sample (tiny scale only).

Each carries a learnable signal a small model can pick up (the larger number, a repeated sentence, the same
words reordered), so a tiny run exercises the real loader, converter, template and scorer end to end. They
are never used at paper scale, and result.json names them as ``generator(seed=…)`` in ``data_sources``.
"""

from __future__ import annotations

import numpy as np

WORDS = ("cat dog bird fish tree house river cloud stone apple bread chair lamp road ship star hill rain "
         "snow wind book door cup box hat coat ball kite boat bell").split()


def _sentence(rng, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS, n)).capitalize() + "."


def _larger_number_choice(rng, n_options: int, stem: str) -> dict:
    """LLM-Adapters form: pick the option holding the largest number."""
    values = rng.choice(np.arange(1, 100), n_options, replace=False)
    options = "\n".join(f"{stem.capitalize()}{i + 1}: the number {v}" for i, v in enumerate(values))
    fmt = "/".join(f"{stem}{i + 1}" for i in range(n_options))
    return {"instruction": f"Please choose the correct {stem} to the question: Which option holds the largest number?"
                           f"\n\n{options}\n\nAnswer format: {fmt}",
            "input": "", "answer": f"{stem}{int(np.argmax(values)) + 1}"}


def commonsense(n_options: int, stem: str):
    def generate(role: str, n: int, seed: int) -> list[dict]:
        rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
        rows = [_larger_number_choice(rng, n_options, stem) for _ in range(n)]
        for row in rows:
            row["output"] = f"the correct answer is {row['answer']}"
        return rows
    return generate


def nli(label_field: str, labels: tuple[str, ...]):
    """sentence1/sentence2 pairs: the hypothesis repeats the premise (entailment) or is unrelated."""
    def generate(role: str, n: int, seed: int) -> list[dict]:
        rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
        rows = []
        for _ in range(n):
            premise = _sentence(rng, 8)
            label = labels[rng.randint(len(labels))]
            hypothesis = premise if label == labels[0] else _sentence(rng, 8)
            rows.append({"sentence1": premise, "sentence2": hypothesis, label_field: label})
        return rows
    return generate


def paraphrase(role: str, n: int, seed: int) -> list[dict]:
    """QQP schema: a duplicate reorders the same words; a non-duplicate uses other words."""
    rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
    rows = []
    for _ in range(n):
        words = list(rng.choice(WORDS, 6))
        duplicate = int(rng.randint(2))
        other = list(rng.permutation(words)) if duplicate else list(rng.choice(WORDS, 6))
        rows.append({"question1": "What is the " + " ".join(words) + "?", "question2": "What is the " + " ".join(other) + "?",
                     "is_duplicate": str(duplicate)})
    return rows


def arithmetic(role: str, n: int, seed: int) -> list[dict]:
    """MetaMathQA schema: two-number word problems, the answer ending in 'The answer is: N'."""
    rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 50, 2)
        rows.append({"query": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
                     "response": f"Tom has {a} + {b} = {a + b} apples. The answer is: {a + b}"})
    return rows


def boxed_arithmetic(role: str, n: int, seed: int) -> list[dict]:
    """MATH schema: a sum, the solution ending in \\boxed{N}."""
    rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 50, 2)
        rows.append({"problem": f"Compute ${a} + {b}$.", "solution": f"${a} + {b} = \\boxed{{{a + b}}}$.",
                     "level": "Level 1", "type": "Prealgebra"})
    return rows


def conversation(role: str, n: int, seed: int) -> list[dict]:
    """Tülu v2 schema: one user turn asking to repeat a sentence, the assistant repeating it."""
    rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
    rows = []
    for i in range(n):
        sentence = _sentence(rng, 8)
        rows.append({"dataset": "stand-in", "id": f"stand-in_{i}",
                     "messages": [{"role": "user", "content": f"Repeat this sentence: {sentence}"},
                                  {"role": "assistant", "content": sentence}]})
    return rows


def largest_number_question(role: str, n: int, seed: int) -> list[dict]:
    """MMLU schema (question, subject, choices, answer index): which of four numbers is the largest."""
    rng = np.random.RandomState(seed + (0 if role == "train" else 10_000))
    rows = []
    for _ in range(n):
        values = rng.choice(np.arange(1, 100), 4, replace=False)
        rows.append({"question": "Which number is the largest?", "subject": "stand-in",
                     "choices": [str(v) for v in values], "answer": int(np.argmax(values))})
    return rows
