"""The suite's own scorers, run on the in-memory model after training (lm-eval covers the built-in tasks).

Each returns {metric: value} plus "{metric}_stderr" where the metric is a mean over examples.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef
from tqdm.auto import tqdm

from .run.data import Collator, encode, option_mean_logprob
from .tasks.instruct import final_number
from .tasks.math_answers import equivalent, last_boxed, predicted_answer


def _batches(items: list, size: int, desc: str):
    for i in tqdm(range(0, len(items), size), desc=desc, leave=False, disable=None):
        yield items[i:i + size]


def _mean_with_stderr(name: str, values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    stderr = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return {name: float(arr.mean()), f"{name}_stderr": stderr, f"{name}_n": len(arr)}


@torch.no_grad()
def score_choice(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    """argmax over candidates of the mean option-token log-prob (MeZO); accuracy over all examples."""
    model.eval()
    collate = Collator(tokenizer.pad_token_id)
    features = encode("choice", examples, tokenizer, max_length)
    correct = []
    device = next(model.parameters()).device
    for chunk in _batches(features, batch_size, "score choices"):
        batch = {k: v.to(device) for k, v in collate(chunk).items()}
        scores = option_mean_logprob(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        offset = 0
        for n, gold in zip(batch["n_candidates"].tolist(), batch["choice_label"].tolist()):
            correct.append(float(int(scores[offset:offset + n].argmax()) == gold))
            offset += n
    return _mean_with_stderr("acc", correct)


@torch.no_grad()
def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int,
                   num_beams: int = 1) -> list[str]:
    """Decoded continuations of ``prompts``, in their order: greedy, or beam search with ``num_beams`` (no sampling
    either way). Batches are formed longest prompt first (as lm-eval orders its requests): a batch pads to its longest
    prompt and attention grows with the square of the length, so mixing lengths costs up to twice the work."""
    model.eval()
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # batched generation continues from the prompt's last real token
    lengths = [len(ids) for ids in tokenizer(prompts).input_ids]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    decoded: dict[int, str] = {}
    try:
        for chunk in _batches(order, batch_size, "generate"):
            enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True).to(device)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams,
                                 pad_token_id=tokenizer.pad_token_id, **shared_prompt_cache(model, enc, num_beams))
            decoded.update(zip(chunk, tokenizer.batch_decode(gen[:, enc.input_ids.shape[1]:], skip_special_tokens=True)))
    finally:
        tokenizer.padding_side = side
    return [decoded[i] for i in range(len(prompts))]


def shared_prompt_cache(model, enc, num_beams: int) -> dict[str, Any]:
    """For beam search: the prompts' keys and values (all but the last token), computed once and repeated per beam.
    ``generate`` would otherwise repeat each prompt ``num_beams`` times before its first forward, and that prefill is
    most of the cost of a short answer to a long prompt (4 beams, 32 tokens, ~400-token prompts: ~75%). Positions are
    generate's own (the left-padding mask's cumulative sum), so the continuation is the one it computes unaided."""
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if num_beams == 1 or ids.shape[1] < 2:
        return {}
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                  use_cache=True).cache
    cache.batch_repeat_interleave(num_beams)
    return {"cache": cache}


def char_accuracy(predicted: str, gold: str) -> float:
    predicted = predicted.strip()
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def score_uuid(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    answer_tokens = max(len(tokenizer(ex["answer"], add_special_tokens=False).input_ids) for ex in examples)
    preds = greedy_answers(model, tokenizer, [ex["prompt"] for ex in examples], answer_tokens + 1, batch_size)
    return _mean_with_stderr("char_acc", [char_accuracy(p, ex["answer"]) for p, ex in zip(preds, examples)])


def score_gsm8k(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    preds = greedy_answers(model, tokenizer, [ex["prompt"] for ex in examples], 256, batch_size)
    hits = [float(final_number(p) is not None and final_number(p) == final_number(ex["answer"])) for p, ex in zip(preds, examples)]
    return _mean_with_stderr("exact_match", hits)


# LLM-Adapters' commonsense evaluation (commonsense_evaluate.py): the instruction template, beam search with 4 beams,
# at most 32 new tokens, and the first option name ("answer2", "true", "solution1", ...) found in the text is the
# prediction; no option named = wrong.
LLM_ADAPTERS_BEAMS, LLM_ADAPTERS_NEW_TOKENS = 4, 32


def extract_option(text: str, names: list[str]) -> str | None:
    """The first option name in ``text`` (longest name first where one is a prefix of another)."""
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    found = re.search(pattern, text.strip())
    return found.group(0) if found else None


def score_llm_adapters(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    preds = greedy_answers(model, tokenizer, [ex["prompt"] for ex in examples], LLM_ADAPTERS_NEW_TOKENS, batch_size,
                           num_beams=LLM_ADAPTERS_BEAMS)
    hits = []
    for text, ex in zip(preds, examples):
        names = list(ex["options"])
        hits.append(float(extract_option(text, names) == names[int(ex["label"])]))
    return _mean_with_stderr("gen_acc", hits)


MATH_NEW_TOKENS = 512  # MetaMath's evaluation generates up to 512 tokens for MATH


def score_math(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    """MATH: the generation's answer ("The answer is: X", else its last box) equals the solution's boxed answer after
    the benchmark's normalisation (bench/tasks/math_answers.py)."""
    preds = greedy_answers(model, tokenizer, [ex["prompt"] for ex in examples], MATH_NEW_TOKENS, batch_size)
    return _mean_with_stderr("exact_match", [float(equivalent(predicted_answer(p), last_boxed(ex["answer"])))
                                             for p, ex in zip(preds, examples)])


@torch.no_grad()
def score_glue(model, tokenizer, examples: list[dict], max_length: int, batch_size: int) -> dict[str, float]:
    model.eval()
    collate = Collator(tokenizer.pad_token_id)
    features = encode("cls", examples, tokenizer, max_length)
    device = next(model.parameters()).device
    preds, golds = [], []
    for chunk in _batches(features, batch_size, "score glue"):
        batch = {k: v.to(device) for k, v in collate(chunk).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        preds += (logits[:, 0] if logits.shape[-1] == 1 else logits.argmax(-1)).tolist()
        golds += batch["labels"].tolist()
    if isinstance(golds[0], float):  # STS-B: regression
        return {"pearson": float(stats.pearsonr(preds, golds)[0]), "spearman": float(stats.spearmanr(preds, golds)[0]),
                "n": len(golds)}
    correct = [float(p == g) for p, g in zip(preds, golds)]
    out = _mean_with_stderr("acc", correct)
    out["mcc"] = float(matthews_corrcoef(golds, preds))
    if len(set(golds)) == 2:
        out["f1"] = float(f1_score(golds, preds))
    return out


SCORERS: dict[str, Callable] = {
    "suite:uuid_char_acc": score_uuid,
    "suite:gsm8k_exact_match": score_gsm8k,
    "suite:math_exact_match": score_math,
    "suite:glue": score_glue,
    "mezo (mean option log-prob)": score_choice,
}


def scorer_for(spec) -> tuple[str, Callable | None]:
    """The suite scorer for this task, if it has one (commonsense goes through lm-eval, see evaluate_final)."""
    if spec.scorer in SCORERS:
        return spec.scorer, SCORERS[spec.scorer]
    if spec.scorer.startswith("adaptllm:"):   # MoRA's continual-pretraining evaluation sets, in AdaptLLM's protocol
        from .adaptllm_eval import scorer

        return spec.scorer, scorer(spec)
    return spec.scorer, None  # eval_loss / perplexity come from the trainer's evaluation


def evaluate_final(spec, model, tokenizer, examples: list[dict], run_dir, use_builtin: bool, max_length: int,
                   batch_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final metrics of a run and where they came from.

    Commonsense: LLM-Adapters' generation accuracy (``gen_acc``, the papers' protocol) and lm-eval's acc/acc_norm
    beside it (built-in task at paper scale, a run-local YAML task otherwise).
    MeZO tasks: the suite's mean-option-log-prob scorer (MeZO's protocol), plus lm-eval's acc on the same
    examples as ``lm_eval_acc``. MMLU: lm-eval's acc at the task's shot count. Others: their suite scorer.
    """
    from .lm_eval_tasks import run_lm_eval, write_choice_task

    metrics: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    name, scorer = scorer_for(spec)
    if scorer is not None:
        metrics.update(scorer(model, tokenizer, examples, max_length, batch_size))
        provenance["scorer"] = name
    if spec.family in ("commonsense", "superglue", "mmlu"):
        if use_builtin and spec.lm_eval_task:
            task, include = spec.lm_eval_task, None
        else:
            include = run_dir / "lm_eval_tasks"
            task = write_choice_task(include, spec.name, examples)
        out = run_lm_eval(model, tokenizer, task, include, batch_size, num_fewshot=spec.num_fewshot)
        prefix = "lm_eval_" if spec.family == "superglue" else ""
        metrics.update({prefix + k: v for k, v in out["metrics"].items()})
        metrics[f"{prefix}acc_n"] = out["n"]
        provenance["lm_eval"] = {"task": out["task"], "version": out["version"], "n": out["n"]}
        if spec.family == "mmlu":
            provenance["scorer"] = f"lm-eval:{out['task']} ({spec.num_fewshot}-shot)"
        if spec.family == "commonsense":
            metrics.update(score_llm_adapters(model, tokenizer, examples, max_length, batch_size))
            provenance["scorer"] = f"llm-adapters generation (gen_acc) + lm-eval:{out['task']} (acc)"
    return metrics, provenance
