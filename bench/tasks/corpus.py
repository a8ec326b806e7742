"""The small tier's pretraining corpus (MoRA §5.3 stands in for C4): every English text in the shared sample files,
deduplicated, with a fixed held-out slice.

Documents are the texts of the records (Alpaca instructions and outputs, the commonsense questions, SuperGLUE
premises and passages, GLUE sentences, GSM8K problems and solutions). The held-out slice is chosen by a hash of
each document's text (1 in ``EVAL_EVERY``), so it is the same for every seed and run and no run trains on it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from functools import lru_cache
from pathlib import Path

EVAL_EVERY = 20
TEXT_FIELDS = ("instruction", "input", "output", "premise", "hypothesis", "passage", "text", "question", "answer",
               "sentence", "sentence1", "sentence2", "choice1", "choice2", "#1 String", "#2 String")


def _texts(record) -> list[str]:
    if isinstance(record, dict):
        out = []
        for key, value in record.items():
            if isinstance(value, str) and key in TEXT_FIELDS and len(value.split()) >= 3:
                out.append(value.strip())
            elif isinstance(value, (dict, list)):
                out += _texts(value)
        return out
    if isinstance(record, list):
        return [t for item in record for t in _texts(item)]
    return []


def _records(path: Path) -> list:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8-sig"))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    # Header-less CoLA keeps its sentence in column 4; the others name their columns.
    if rows and len(rows[0]) == 4 and "sentence" not in rows[0]:
        return [{"sentence": r[3]} for r in rows if len(r) == 4]
    return [dict(zip(rows[0], r)) for r in rows[1:]] if rows else []


@lru_cache(maxsize=4)
def documents(root: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, held out) documents from every json/jsonl/tsv file under ``root`` except the models."""
    seen, train, held_out = set(), [], []
    for path in sorted(Path(root).rglob("*")):
        if path.suffix not in (".json", ".jsonl", ".tsv") or "models" in path.parts or path.name == "counts.json":
            continue
        for text in _texts(_records(path)):
            if text in seen:
                continue
            seen.add(text)
            slot = int(hashlib.sha1(text.encode()).hexdigest(), 16) % EVAL_EVERY
            (held_out if slot == 0 else train).append(text)
    return tuple(train), tuple(held_out)


def corpus_records(role: str, root: str) -> list[dict]:
    train, held_out = documents(str(root))
    return [{"text": t} for t in (train if role == "train" else held_out)]


# The comparison's classification stand-in (bench/compare.py): which GLUE corpus a sentence comes from. Real text and a
# real label (its provenance); the 260K story model learns it above chance, where SST-2's sentiment stays at chance
# (300 steps: FFT 0.546, LoRA r 16 0.506 dev accuracy). Train sentences from each corpus's train file, evaluation
# sentences from its dev file, a text seen in any train file never evaluated.
SOURCES = (("SST-2", "sentence"), ("CoLA", "sentence"), ("MRPC", "#1 String"), ("STS-B", "sentence1"))
PER_SOURCE = {"train": 2000, "eval": 400}   # balanced classes: the smallest corpus's count (STS-B train, MRPC dev)


@lru_cache(maxsize=4)
def _source_split(root: str, split: str) -> tuple[tuple[str, int], ...]:
    rows = []
    for label, (name, field) in enumerate(SOURCES):
        texts = [str(r.get(field) or "").strip() for r in _records(Path(root) / "glue" / name / f"{split}.tsv")]
        rows.append([(t, label) for t in dict.fromkeys(t for t in texts if len(t.split()) >= 3)])
    return tuple(pair for per_source in rows for pair in per_source)


def source_records(role: str, root: str) -> list[dict]:
    train = _source_split(str(root), "train")
    if role == "train":
        rows = train
    else:
        seen = {text for text, _ in train}
        rows = tuple((t, y) for t, y in _source_split(str(root), "dev") if t not in seen)
    cap = PER_SOURCE["train" if role == "train" else "eval"]
    counts: dict[int, int] = {}
    out = []
    for text, label in rows:
        counts[label] = counts.get(label, 0) + 1
        if counts[label] <= cap:
            out.append({"text": text, "label": label})
    return out
