"""Tokenisation of canonical examples and the padding collator, per task kind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError

IGNORE = -100


def _prompt_answer_ids(tokenizer, prompt: str, answer: str, max_length: int, add_eos: bool) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(prompt).input_ids
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + ([tokenizer.eos_token_id] if add_eos else [])
    keep_bos = prompt_ids[:1] if prompt_ids and prompt_ids[0] == tokenizer.bos_token_id else []
    # The answer is what is learned or scored: keep it (its start, if it alone is too long) and cut the
    # prompt's start after BOS instead, so no sequence exceeds max_length.
    answer_ids = answer_ids[: max(1, max_length - len(keep_bos) - 1)]
    overflow = len(prompt_ids) + len(answer_ids) - max_length
    if overflow > 0:
        prompt_ids = keep_bos + prompt_ids[len(keep_bos) + overflow:]
    return prompt_ids, answer_ids


def encode_sft(example: dict, tokenizer, max_length: int) -> dict:
    """Loss on the answer only: prompt tokens are labelled IGNORE."""
    prompt_ids, answer_ids = _prompt_answer_ids(tokenizer, example["prompt"], example["answer"], max_length, add_eos=True)
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def encode_choice(example: dict, tokenizer, max_length: int) -> dict:
    """One sequence per candidate, labels on the candidate's tokens; ``label`` is the gold candidate."""
    seqs, labels = [], []
    for candidate in example["candidates"]:
        prompt_ids, option_ids = _prompt_answer_ids(tokenizer, example["prompt"], candidate, max_length, add_eos=False)
        seqs.append(prompt_ids + option_ids)
        labels.append([IGNORE] * len(prompt_ids) + option_ids)
    return {"input_ids": seqs, "labels": labels, "choice_label": int(example["label"])}


def encode_cls(example: dict, tokenizer, max_length: int) -> dict:
    enc = tokenizer(example["text"], example.get("text_pair"), truncation=True, max_length=max_length)
    return {"input_ids": enc.input_ids, "labels": example["label"]}


_PACKED: dict[str, list[list[int]]] = {}   # corpus digest -> its blocks, kept while the process lives
_PACKED_MAX = 4


def pack_lm(examples: list[dict], tokenizer, block_size: int) -> list[dict]:
    """Concatenate texts (EOS between) and cut into full blocks; the tail shorter than a block is dropped.

    The blocks of a corpus are remembered for the process's life, keyed by the tokenizer, the block size and a
    digest of the texts: a sweep's worker processes (joblib) tokenise the 8 MB shared corpus once, not once per run
    (~3 s each on 2 cores)."""
    digest = hashlib.sha1(f"{tokenizer.name_or_path}|{len(tokenizer)}|{block_size}".encode())
    for ex in examples:
        digest.update(ex["text"].encode())
        digest.update(b"\0")
    key = digest.hexdigest()
    if key not in _PACKED:
        if len(_PACKED) >= _PACKED_MAX:
            _PACKED.pop(next(iter(_PACKED)))
        _PACKED[key] = [block["input_ids"] for block in PackedStream(examples, tokenizer, block_size)]
    return [{"input_ids": list(block), "labels": list(block)} for block in _PACKED[key]]


class PackedStream(torch.utils.data.IterableDataset):
    """The packing itself, block by block as it is read: over a list (``pack_lm``) or a streamed hub corpus, whose
    texts are never held."""

    def __init__(self, examples, tokenizer, block_size: int):
        super().__init__()
        self.examples, self.tokenizer, self.block_size = examples, tokenizer, block_size

    def __iter__(self):
        buffer: list[int] = []
        for ex in self.examples:
            buffer += self.tokenizer(ex["text"]).input_ids + [self.tokenizer.eos_token_id]
            while len(buffer) >= self.block_size:
                block, buffer = buffer[:self.block_size], buffer[self.block_size:]
                yield {"input_ids": block, "labels": list(block)}


def example_lengths(kind: str, examples: list[dict], tokenizer) -> list[int]:
    """Tokens each example needs whole (prompt + answer + EOS; the longest candidate; text + pair)."""
    if kind == "lm" or not examples:
        return []  # packed into blocks: nothing is cut
    if kind == "cls":
        return [len(tokenizer(ex["text"], ex.get("text_pair")).input_ids) for ex in examples]
    prompts = tokenizer([ex["prompt"] for ex in examples]).input_ids
    if kind == "sft":
        answers = tokenizer([ex["answer"] for ex in examples], add_special_tokens=False).input_ids
        return [len(p) + len(a) + 1 for p, a in zip(prompts, answers)]
    lengths = []
    for ex, prompt in zip(examples, prompts):
        options = tokenizer(list(ex["candidates"]), add_special_tokens=False).input_ids
        lengths.append(len(prompt) + max(len(o) for o in options))
    return lengths


OVERLONG = ("error", "drop")


def fit_examples(task: str, kind: str, splits: dict[str, list[dict]], tokenizer, max_length: int,
                 overlong: str = "error") -> tuple[dict[str, list[dict]], int, dict[str, int]]:
    """No task truncates silently. Returns (splits, longest kept example, dropped per split).

    ``overlong="error"``: a UserError naming the task, the split, the longest example and the limit when any
    example would be cut at ``max_length``. ``"drop"``: such examples are left out, and counted (for data whose
    texts exceed a small model's context, e.g. RTE premises with stories260K's 512-token window)."""
    if overlong not in OVERLONG:
        raise UserError(f"task.overlong={overlong!r}; valid: {list(OVERLONG)}")
    kept_splits, dropped, longest = {}, {}, 0
    for split, examples in splits.items():
        lengths = example_lengths(kind, examples, tokenizer)
        if not lengths:
            kept_splits[split], dropped[split] = examples, 0
            continue
        if max(lengths) > max_length and overlong == "error":
            raise UserError(f"task={task}: the longest {split} example is {max(lengths)} tokens but "
                            f"task.max_length={max_length} would cut it; set task.max_length={max(lengths)} or more "
                            f"(or task.overlong=drop to leave such examples out)")
        keep = [i for i, n in enumerate(lengths) if n <= max_length]
        kept_splits[split] = [examples[i] for i in keep]
        dropped[split] = len(examples) - len(keep)
        longest = max([longest, *(lengths[i] for i in keep)])
    return kept_splits, longest, dropped


ENCODERS = {"sft": encode_sft, "choice": encode_choice, "cls": encode_cls}


def encode(kind: str, examples: list[dict], tokenizer, max_length: int) -> list[dict]:
    if kind == "lm":
        return pack_lm(examples, tokenizer, max_length)
    return [ENCODERS[kind](ex, tokenizer, max_length) for ex in examples]


ENCODING_VERSION = "1"   # part of every cached tokenisation's name: bump it when an encoder above changes


def tokenizer_digest(tokenizer) -> str:
    """The tokenizer as it splits text: its vocabulary and rules (a fast tokenizer's whole serialisation), not its
    name, so a re-downloaded or re-pinned tokenizer that splits differently gets new cache entries."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    described = backend.to_str() if backend is not None else f"{tokenizer.name_or_path}|{len(tokenizer)}"
    return hashlib.sha1(f"{type(tokenizer).__name__}|{tokenizer.pad_token_id}|{described}".encode()).hexdigest()


def _encode_batch(batch: dict, kind: str, tokenizer, max_length: int) -> dict:
    rows = encode(kind, [json.loads(text) for text in batch["example"]], tokenizer, max_length)
    return {key: [row[key] for row in rows] for key in (rows[0] if rows else {"input_ids": None, "labels": None})}


def tokenized(kind: str, examples: list[dict], tokenizer, max_length: int, cache_dir: Path | None = None):
    """The examples encoded as a ``datasets.Dataset`` through ``Dataset.map``, whose Arrow file is cached under
    ``cache_dir`` by a fingerprint of the examples, the tokenizer, the length and the encoding: every run of a sweep
    (and every process of a run: the main one writes it first) reads the same tokenisation instead of re-tokenising
    in Python. The rows are exactly ``encode``'s."""
    from datasets import Dataset

    digest = hashlib.sha1(f"{ENCODING_VERSION}|{kind}|{max_length}|{tokenizer_digest(tokenizer)}".encode())
    texts = [json.dumps(ex, sort_keys=True, default=str) for ex in examples]
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    fingerprint = digest.hexdigest()
    # One JSON column: canonical examples differ in shape by task (candidates, text pairs), which Arrow would type.
    raw = Dataset.from_dict({"example": texts})
    options = {"batched": True, "batch_size": None if kind == "lm" else 1000, "remove_columns": ["example"],
               "new_fingerprint": fingerprint, "fn_kwargs": {"kind": kind, "tokenizer": tokenizer,
                                                             "max_length": max_length}}
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        options.update(cache_file_name=str(Path(cache_dir) / f"{fingerprint}.arrow"), load_from_cache_file=True)
    return raw.map(_encode_batch, **options)


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


class Collator:
    """Right-pads input_ids/labels, builds attention_mask; flattens the candidates of choice examples."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "choice_label" in features[0]:
            ids = [seq for f in features for seq in f["input_ids"]]
            labels = [seq for f in features for seq in f["labels"]]
            batch = {"input_ids": _pad(ids, self.pad_token_id), "labels": _pad(labels, IGNORE),
                     "choice_label": torch.tensor([f["choice_label"] for f in features]),
                     "n_candidates": torch.tensor([len(f["input_ids"]) for f in features])}
        else:
            ids = [f["input_ids"] for f in features]
            batch = {"input_ids": _pad(ids, self.pad_token_id)}
            first = features[0]["labels"]
            if isinstance(first, list):
                batch["labels"] = _pad([f["labels"] for f in features], IGNORE)
            else:
                dtype = torch.float32 if isinstance(first, float) else torch.long
                batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)
        batch["attention_mask"] = (torch.arange(batch["input_ids"].shape[1])[None, :]
                                   < torch.tensor([len(s) for s in ids])[:, None]).long()
        return batch


def option_mean_logprob(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean log-prob of each sequence's labelled tokens (MeZO's option score), shape (N,)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    # Prompt tuning prepends virtual positions to the logits: the sequence's own are the last ones.
    logits = logits[:, -input_ids.shape[1]:][:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)
