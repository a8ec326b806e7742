"""AdaptLLM's scoring of the continual-pretraining evaluation sets (bench/tasks/adaptllm.py), as its code does it.

Sources, github.com/microsoft/LMOps at adaptllm/: inference.py (``choice_losses``: the summed NLL of an option's tokens
divided by their count, argmin; ``completion_losses``: greedy, at most ``generate_max_len`` new tokens, stopped at a
newline), src/dataset_readers/inference_dsr.py (an option's tokens are those of tokenize(question + answer) past
tokenize(question); a completion prompt is cut from the left to ``n_tokens - generate_max_len``), configs/inference.yaml
(n_tokens 2048, generate_max_len 100), src/utils/metric.py and qa_utils.py (the metrics and the answer parsing), and
jantrienes/nereval's ``evaluate`` (nereval.py at 4c5e5f5), which metric.py calls for NER.

Every metric is returned as a fraction (the papers print percentages) with its example count, ``<metric>_n``.
"""

from __future__ import annotations

import ast
import math
import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import torch
from sklearn.metrics import f1_score

from .run.data import IGNORE, Collator, option_mean_logprob

N_TOKENS, GENERATE_MAX_LEN = 2048, 100   # AdaptLLM configs/inference.yaml
ADD_BOS = False                         # adaptllm/scripts/README.md: add_bos_token=False for AdaptLLM's LLaMA models


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=ADD_BOS).input_ids


# ----------------------------------------------------------------------------------------------- multiple choice
@torch.no_grad()
def option_scores(model, tokenizer, examples: list[dict], batch_size: int) -> list[list[float]]:
    """Per example, each candidate's mean log-likelihood per token (AdaptLLM's per-token likelihood): the candidate's
    tokens are those of tokenize(prompt + candidate) past tokenize(prompt), as AdaptLLM's loss mask."""
    model.eval()
    device = next(model.parameters()).device
    features, owner = [], []
    for i, ex in enumerate(examples):
        prompt_len = len(_ids(tokenizer, ex["prompt"]))
        for candidate in ex["candidates"]:
            ids = _ids(tokenizer, ex["prompt"] + candidate)
            if len(ids) <= prompt_len:
                raise ValueError(f"candidate {candidate!r} adds no token to its prompt")
            features.append({"input_ids": ids, "labels": [IGNORE] * prompt_len + ids[prompt_len:]})
            owner.append(i)
    order = sorted(range(len(features)), key=lambda k: -len(features[k]["input_ids"]))   # batches of like lengths
    collate, scores = Collator(tokenizer.pad_token_id), [0.0] * len(features)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate([features[k] for k in chunk]).items()}
        means = option_mean_logprob(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        for k, value in zip(chunk, means.tolist()):
            scores[k] = value
    per_example: list[list[float]] = [[] for _ in examples]
    for k, i in enumerate(owner):
        per_example[i].append(scores[k])
    return per_example


def predictions(scores: list[list[float]]) -> list[int]:
    """The option with the highest mean log-likelihood (AdaptLLM: argmin of the per-token loss; the first on a tie)."""
    return [int(np.argmax(row)) for row in scores]


def choice_metric(metric: str, preds: list[int], golds: list[int], groups: list[int] | None = None) -> float:
    """AdaptLLM's metric.py on predicted and gold option indices, as a fraction."""
    if metric == "acc":
        return float(np.mean(np.asarray(preds) == np.asarray(golds)))
    if metric == "micro_f1":
        return float(f1_score(golds, preds, average="micro"))
    if metric == "weighted_f1" and groups is None:
        return float(f1_score(golds, preds, average="weighted"))
    if metric == "weighted_f1":
        # Headline (compute_headline): the weighted F1 of each sub-question (class_id), averaged over them. AdaptLLM
        # divides by its nine sub-questions; here by those present, the same on the hub set, which asks all nine.
        by_group: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for p, g, group in zip(preds, golds, groups):
            by_group[group][0].append(g)
            by_group[group][1].append(p)
        return float(np.mean([f1_score(t, p, average="weighted") for t, p in by_group.values()]))
    raise ValueError(f"metric {metric!r}; valid: acc, micro_f1, weighted_f1")


def score_choice(model, tokenizer, examples: list[dict], max_length: int, batch_size: int, metric: str) -> dict:
    preds = predictions(option_scores(model, tokenizer, examples, batch_size))
    golds = [int(ex["label"]) for ex in examples]
    groups = [int(ex["class_id"]) for ex in examples] if examples and "class_id" in examples[0] else None
    return {metric: choice_metric(metric, preds, golds, groups), f"{metric}_n": len(examples)}


# ----------------------------------------------------------------------------------------------- text completion
class _NewlineStop:
    """Done once a sequence's generated text holds a newline (AdaptLLM's StopStrCriteria, per sequence)."""

    def __init__(self, tokenizer, start: int):
        self.tokenizer, self.start = tokenizer, start

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start:])
        return torch.tensor(["\n" in t for t in texts], dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def completions(model, tokenizer, prompts: list[str], batch_size: int) -> list[str]:
    """Greedy continuations, the text before the first newline: each prompt cut from the left to its last
    N_TOKENS - GENERATE_MAX_LEN tokens, at most GENERATE_MAX_LEN new ones."""
    from transformers import StoppingCriteriaList

    model.eval()
    device = next(model.parameters()).device
    budget = N_TOKENS - GENERATE_MAX_LEN
    encoded = [_ids(tokenizer, p)[-budget:] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    out: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(encoded[i])) + encoded[i] for i in chunk],
                           device=device)
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk], device=device)
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=GENERATE_MAX_LEN, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id,
                             stopping_criteria=StoppingCriteriaList([_NewlineStop(tokenizer, width)]))
        texts = tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)
        out.update((i, t.split("\n")[0]) for i, t in zip(chunk, texts))
    return [out[i] for i in range(len(prompts))]


NUMBER = re.compile(r"[-+]?[.]?[\d]+(?:,\d\d\d)*[\.]?\d*(?:[eE][-+]?\d+)?[%]*")   # qa_utils.normalized_num


def numbers(text: str) -> list[float]:
    """The numbers of the text's first line, as qa_utils.normalized_num reads them: commas dropped, each '%' a
    division by 100, and a string Python cannot read as a number (an integer with a leading zero, '1.2.3') infinity."""
    found = []
    for raw in NUMBER.findall(text.split("\n")[0].strip()):
        percents = raw.count("%")
        try:
            value = float(ast.literal_eval(raw.replace("%", "").replace(",", "")))
        except (ValueError, SyntaxError):
            value = float("inf")
        found.append(value / 100 ** percents if math.isfinite(value) else value)
    return found


def convfinqa_match(pred: str, gold: str) -> bool:
    """compute_ConvFinQA: the gold's first number equals one of the prediction's within an absolute 0.01."""
    gold_numbers, pred_numbers = numbers(gold), numbers(pred)
    if not gold_numbers or not pred_numbers:
        return False
    return any(math.isclose(p, gold_numbers[0], abs_tol=1e-2) for p in pred_numbers)


class Entity(NamedTuple):   # nereval.Entity
    text: str
    type: str
    start: int


ENTITY = re.compile(r"([^\s]+[\s]+)(\([^\s]+\))", re.IGNORECASE)   # qa_utils.parse_ner


def parse_entities(text: str) -> list[Entity]:
    """qa_utils.parse_ner: each 'word (TYPE)' pair, the word without its trailing whitespace character, start 0,
    repeats dropped."""
    out: list[Entity] = []
    for word, kind in ENTITY.findall(text):
        entity = Entity(word[:-1] if len(word) > 1 else "", kind[1:-1] if len(kind) > 2 else "", 0)
        if entity not in out:
            out.append(entity)
    return out


def entity_f1(true: list[Entity], pred: list[Entity]) -> float:
    """nereval.evaluate([true], [pred]): each gold entity counts once for its text (exact text and start) and once for
    its type (same type, overlapping text), matched against the first predicted entity that agrees on either; F1 of
    precision (over 2 × predicted) and recall (over 2 × gold); 0 where either is empty."""
    correct = 0
    for x in true:
        for y in pred:
            text_match = x.text == y.text and x.start == y.start
            type_match = x.type == y.type and x.start < y.start + len(y.text) and y.start < x.start + len(x.text)
            correct += int(text_match) + int(type_match)
            if text_match or type_match:
                break
    precision = correct / (2 * len(pred)) if pred else 0.0
    recall = correct / (2 * len(true)) if true else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def completion_metric(metric: str, preds: list[str], golds: list[str]) -> float:
    if metric == "exact_match":
        return float(np.mean([convfinqa_match(p, g) for p, g in zip(preds, golds)]))
    if metric == "entity_f1":
        return float(np.mean([entity_f1(parse_entities(g), parse_entities(p)) for p, g in zip(preds, golds)]))
    raise ValueError(f"metric {metric!r}; valid: exact_match, entity_f1")


def score_completion(model, tokenizer, examples: list[dict], max_length: int, batch_size: int, metric: str) -> dict:
    preds = completions(model, tokenizer, [ex["prompt"] for ex in examples], batch_size)
    return {metric: completion_metric(metric, preds, [ex["answer"] for ex in examples]), f"{metric}_n": len(examples)}


SCORERS = {"adaptllm:choice": score_choice, "adaptllm:completion": score_completion}


def scorer(spec):
    """The scorer of an AdaptLLM task, bound to its headline metric (TaskSpec.metric)."""
    score = SCORERS[spec.scorer]
    return lambda model, tokenizer, examples, max_length, batch_size: score(model, tokenizer, examples, max_length,
                                                                            batch_size, spec.metric)
