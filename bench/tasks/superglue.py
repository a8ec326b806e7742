"""SuperGLUE-style classification (COLA Tables 1-2, after MeZO): MeZO's prompt templates and verbalisers,
scored by the argmax of the mean log-prob of each option's tokens (the suite's ``mezo`` scorer, not lm-eval's acc).

MeZO's data protocol (``mezo_split``): train and dev are drawn together from the train split with one
seeded permutation (dev = the last ``num_dev``), test = ``num_eval`` rows of the validation split permuted
with the same seed.
"""

from __future__ import annotations

import numpy as np

from .registry import TaskSpec, register


def _bool_label(value) -> int:
    if isinstance(value, str):
        return int(value.strip().lower() in ("true", "1", "yes"))
    return int(bool(value))


def sst2(record: dict) -> dict:
    return {"prompt": f"{record['sentence'].strip()} It was", "candidates": [" terrible", " great"],
            "label": int(record["label"])}


def rte(record: dict) -> dict:
    label = record["label"]
    label = {"entailment": 0, "not_entailment": 1}[label] if isinstance(label, str) else int(label)
    return {"prompt": f"{record['premise']}\nDoes this mean that \"{record['hypothesis']}\" is true? Yes or No?\n",
            "candidates": ["Yes", "No"], "label": label}


def cb(record: dict) -> dict:
    label = record["label"]
    label = {"entailment": 0, "contradiction": 1, "neutral": 2}[label] if isinstance(label, str) else int(label)
    return {"prompt": f"Suppose {record['premise']} Can we infer that \"{record['hypothesis']}\"? Yes, No, or Maybe?\n",
            "candidates": ["Yes", "No", "Maybe"], "label": label}


def boolq(record: dict) -> dict:
    return {"prompt": f"{record['passage']} {record['question']}?", "candidates": [" No", " Yes"],
            "label": _bool_label(record["label"])}


def copa(record: dict) -> dict:
    connector = " because" if record["question"] == "cause" else " so"
    lower = lambda s: s[0].lower() + s[1:]
    return {"prompt": record["premise"].rstrip(".") + connector,
            "candidates": [" " + lower(record["choice1"]), " " + lower(record["choice2"])], "label": int(record["label"])}


def wic(record: dict) -> dict:
    word = record["word"]
    return {"prompt": f"Does the word \"{word}\" have the same meaning in these two sentences? Yes, No?\n"
                      f"{record['sentence1']}\n{record['sentence2']}\n",
            "candidates": ["No", "Yes"], "label": _bool_label(record["label"])}


def wsc(record: dict) -> dict:
    target = record.get("target", record)
    span1, span2 = target["span1_text"], target["span2_text"]
    return {"prompt": f"{record['text']}\nIn the previous sentence, does the pronoun \"{span2.lower()}\" refer to {span1}? Yes or No?\n",
            "candidates": ["No", "Yes"], "label": _bool_label(record["label"])}


def multirc_flatten(record: dict) -> list[dict]:
    """Original MultiRC nests passage → questions → answers; MeZO scores each (question, answer) pair."""
    if "paragraph" in record and isinstance(record["paragraph"], str):  # the hub's flat rows
        return [record]
    passage = record["passage"]
    return [{"paragraph": passage["text"], "question": q["question"], "answer": a["text"], "label": a["label"]}
            for q in passage["questions"] for a in q["answers"]]


def multirc(record: dict) -> dict:
    return {"prompt": f"{record['paragraph']}\nQuestion: {record['question']}\nI found this answer \"{record['answer']}\". "
                      "Is that correct? Yes or No?\n",
            "candidates": ["No", "Yes"], "label": _bool_label(record["label"]),
            "group": record["paragraph"]}  # questions on one passage stay on one side of a held-out split


def mezo_split(n_train_rows: int, n_eval_rows: int, seed: int, num_train: int, num_dev: int,
               num_eval: int) -> tuple[list[int], list[int], list[int]]:
    """MeZO's sampling, literally: (train ids, dev ids) from the train split, test ids from validation."""
    rng = np.random.RandomState(seed)
    drawn = rng.permutation(n_train_rows)[: num_train + num_dev].tolist()
    dev = drawn[len(drawn) - min(num_dev, len(drawn)):]
    train = drawn[: len(drawn) - len(dev)]
    test = np.random.RandomState(seed).permutation(n_eval_rows)[:num_eval].tolist()
    return train, dev, test


COMMON = dict(family="superglue", kind="choice", paper="cola", metric="acc", scorer="mezo (mean option log-prob)",
              hub_splits={"train": "train", "eval": "validation"})
SUPERGLUE = "aps/super_glue"
for name, convert, fields, config in [
    ("rte", rte, ("premise", "hypothesis", "label"), "rte"),
    ("cb", cb, ("premise", "hypothesis", "label"), "cb"),
    ("boolq_mezo", boolq, ("question", "passage", "label"), "boolq"),
    ("copa", copa, ("premise", "choice1", "choice2", "question", "label"), "copa"),
    ("wic", wic, ("word", "sentence1", "sentence2", "label"), "wic"),
    ("wsc", wsc, ("text", "label"), "wsc.fixed"),
]:
    register(TaskSpec(name=name, hub_dataset=SUPERGLUE, hub_config=config, local_fields=fields, hub_fields=fields,
                      convert_local=convert, convert_hub=convert, **COMMON))
register(TaskSpec(name="multirc", hub_dataset=SUPERGLUE, hub_config="multirc", local_fields=("passage",),
                  hub_fields=("paragraph", "question", "answer", "label"), convert_local=multirc, convert_hub=multirc,
                  expand=multirc_flatten, **COMMON))
register(TaskSpec(name="sst2_mezo", hub_dataset="nyu-mll/glue", hub_config="sst2", local_fields=("sentence", "label"),
                  hub_fields=("sentence", "label"), convert_local=sst2, convert_hub=sst2, **COMMON))
