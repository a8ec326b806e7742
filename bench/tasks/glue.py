"""GLUE (SaLoRA Table 1): RoBERTa sequence classification on the dev sets; metrics from scikit-learn / scipy."""

from __future__ import annotations

from .corpus import SOURCES
from .registry import TaskSpec, register
from .synthetic import nli, paraphrase

NLI = {"entailment": 0, "not_entailment": 1, "contradiction": 2, "neutral": 1}


def _label(value, mapping=None):
    if mapping and isinstance(value, str) and value in mapping:
        return mapping[value]
    return int(value)


def single(field: str):
    return lambda r: {"text": r[field], "text_pair": None, "label": _label(r["label"])}


def pair(first: str, second: str, label: str = "label", mapping=None, regression=False):
    def convert(r):
        value = float(r[label]) if regression else _label(r[label], mapping)
        return {"text": r[first], "text_pair": r[second], "label": value}
    return convert


COMMON = dict(family="glue", kind="cls", paper="salora", hub_dataset="nyu-mll/glue",
              hub_splits={"train": "train", "eval": "validation"})
register(TaskSpec(name="sst2", hub_config="sst2", metric="acc", scorer="suite:glue", num_labels=2,
                  local_fields=("sentence", "label"), hub_fields=("sentence", "label"),
                  convert_local=single("sentence"), convert_hub=single("sentence"), **COMMON))
register(TaskSpec(name="cola", hub_config="cola", metric="mcc", scorer="suite:glue", num_labels=2,
                  local_columns=("source", "label", "original_label", "sentence"), local_header=False,
                  local_fields=("sentence", "label"), hub_fields=("sentence", "label"),
                  convert_local=single("sentence"), convert_hub=single("sentence"), **COMMON))
register(TaskSpec(name="mrpc", hub_config="mrpc", metric="f1", scorer="suite:glue", num_labels=2,
                  local_fields=("Quality", "#1 String", "#2 String"), hub_fields=("sentence1", "sentence2", "label"),
                  convert_local=pair("#1 String", "#2 String", label="Quality"),
                  convert_hub=pair("sentence1", "sentence2"), **COMMON))
register(TaskSpec(name="stsb", hub_config="stsb", metric="pearson", scorer="suite:glue", num_labels=1,
                  local_fields=("sentence1", "sentence2", "score"), hub_fields=("sentence1", "sentence2", "label"),
                  convert_local=pair("sentence1", "sentence2", label="score", regression=True),
                  convert_hub=pair("sentence1", "sentence2", regression=True), **COMMON))
register(TaskSpec(name="qnli", hub_config="qnli", metric="acc", scorer="suite:glue", num_labels=2,
                  local_fields=("question", "sentence", "label"), hub_fields=("question", "sentence", "label"),
                  convert_local=pair("question", "sentence", mapping=NLI), convert_hub=pair("question", "sentence"), **COMMON))
register(TaskSpec(name="rte_glue", hub_config="rte", metric="acc", scorer="suite:glue", num_labels=2,
                  local_fields=("sentence1", "sentence2", "label"), hub_fields=("sentence1", "sentence2", "label"),
                  convert_local=pair("sentence1", "sentence2", mapping=NLI), convert_hub=pair("sentence1", "sentence2"),
                  generator=nli("label", ("entailment", "not_entailment")), **COMMON))
register(TaskSpec(name="qqp", hub_config="qqp", metric="acc", scorer="suite:glue", num_labels=2,
                  local_fields=("question1", "question2", "is_duplicate"), hub_fields=("question1", "question2", "label"),
                  convert_local=pair("question1", "question2", label="is_duplicate"), convert_hub=pair("question1", "question2"),
                  generator=paraphrase, **COMMON))
register(TaskSpec(name="mnli", hub_config="mnli", metric="acc", scorer="suite:glue", num_labels=3,
                  hub_splits={"train": "train", "eval": "validation_matched"},
                  local_fields=("sentence1", "sentence2", "gold_label"), hub_fields=("premise", "hypothesis", "label"),
                  convert_local=pair("sentence1", "sentence2", label="gold_label", mapping={"entailment": 0, "neutral": 1, "contradiction": 2}),
                  convert_hub=pair("premise", "hypothesis"), generator=nli("gold_label", ("entailment", "neutral", "contradiction")),
                  **{k: v for k, v in COMMON.items() if k != "hub_splits"}))
register(TaskSpec(name="glue_source", family="glue", kind="cls", paper="compare", metric="acc", scorer="suite:glue",
                  num_labels=len(SOURCES), local_fields=("text", "label"), convert_local=single("text")))
