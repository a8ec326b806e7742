"""What a row or a line is called, from a run's config: its model, its method, its rank and the setting that tells
two runs of one method apart. Published tables are matched on these labels after ``norm``.

A method's labels are its own (methods.base.AdapterMethod: ``label``, ``table_label``, ``rank_label``,
``setting_label``, read from the record's method node); a method this checkout does not know keeps its name. A
paper's own names for rows (SaLoRA's "SaLoRA_lambda=0") are in its spec (``TableRules.row_labels``).
"""

from __future__ import annotations

import re

MODEL_LABELS = {
    "tinyllama-1.1b": "TinyLlama-1.1B", "gemma-2b": "Gemma-2B", "opt-1.3b": "OPT-1.3B", "llama2-7b": "LLaMA-2-7B",
    "mistral-7b": "Mistral-7B", "roberta-base": "RoBERTa-base", "roberta-large": "RoBERTa-large",
    "llama-250m": "LLaMA-style 250M (from scratch)", "llama-1b": "LLaMA-style 1.3B (from scratch)",
    "stories260k": "stories260K (tiny stand-in)", "tiny_llama": "tiny Llama (random init)",
    "tiny_opt": "tiny OPT (random init)", "tiny_roberta": "tiny RoBERTa (random init)",
}
def norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower().replace("+", "plus"))  # LoRA+ is not LoRA


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def _method_class(cfg: dict):
    from methods import METHODS

    return METHODS.get((cfg.get("method") or {}).get("name"))


def method_label(cfg: dict) -> str:
    cls = _method_class(cfg)
    return cls.table_label(cfg["method"]) if cls else str((cfg.get("method") or {}).get("name", "?"))


def rank_label(cfg: dict) -> str:
    cls = _method_class(cfg)
    return cls.rank_label(cfg["method"]) if cls else str((cfg.get("method") or {}).get("r"))


def setting_of(cfg: dict) -> str:
    cls = _method_class(cfg)
    return cls.setting_label(cfg["method"]) if cls else ""


def run_label(cfg: dict) -> str:
    """A figure's line: method and rank ("FFT" alone: a rankless method has no rank to name)."""
    rank = rank_label(cfg)
    return method_label(cfg) if rank == "–" else f"{method_label(cfg)} r{rank}"


def natural_key(label: str) -> list:
    """Sort key that reads digit runs as numbers, so "LoRA r2" comes before "LoRA r16"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]


def model_cell(model: str) -> str:
    """The published CSVs mark a model the paper's table does not name with a trailing '?' (MoRA's Table 1: 'the
    7B model' of Sec. 4); the page says so in words."""
    if not model:
        return "not named (any model)"
    if model.endswith("?"):
        return f"{model[:-1]} (inferred: the table names no model)"
    return model


def setting_cell(setting: str) -> str:
    """A setting the paper leaves unread is 'key=?' in the published CSVs (SaLoRA's Table 4 batch sizes)."""
    if not setting:
        return "–"
    return re.sub(r"(\w+)=\?", lambda m: f"{m.group(1).replace('_', ' ')} not stated", setting)
