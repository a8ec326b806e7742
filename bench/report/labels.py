"""What a row or a line is called, from a run's config: its model, its method, its rank and the setting that tells
two runs of one method apart. Published tables are matched on these labels after ``norm``.

The method knowledge here (labels, which methods ignore the rank, a chain's ranks and length, MoRA's operator) is
each method's own and moves to the methods' hooks (methods.base.AdapterMethod); ``method_label``, ``rank_label``
and ``setting_of`` are the three functions that switch. A paper's own names for rows (SaLoRA's "SaLoRA_lambda=0")
are in its spec (``TableRules.row_labels``), not here.
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
METHOD_LABELS = {"lora": "LoRA", "olora": "OLoRA", "cola": "COLA", "salora": "SaLoRA", "mora": "MoRA",
                 "relora": "ReLoRA", "remora": "ReMoRA", "fft": "FFT", "dora": "DoRA", "loraplus": "LoRA+",
                 "asylora": "AsyLoRA", "adalora": "AdaLoRA", "prefix": "Prefix", "prompt": "Prompt",
                 "adapter_h": "Adapter^H", "adapter_p": "Adapter^P"}
RANKLESS = ("fft", "prefix", "prompt")  # methods that accept r and ignore it: their rank reads "–"


def norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower().replace("+", "plus"))  # LoRA+ is not LoRA


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def method_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    name = m.get("name", "?")
    if name == "cola" and not (m.get("knots") or []):
        return "LoRA"  # a chain of length 1 is plain LoRA
    return METHOD_LABELS.get(name, name)


def rank_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    ranks = m.get("ranks")
    if m.get("name") in RANKLESS:
        return "–"
    if m.get("name") == "cola" and ranks and len(ranks) == 2:
        return f"{ranks[0]}->{ranks[1]}"
    return str(m.get("r"))


def setting_of(cfg: dict) -> str:
    m = cfg.get("method", {})
    if m.get("name") in ("mora", "remora") and "mora_type" in m:
        return f"operator={m['mora_type']}"
    if m.get("name") == "cola":
        return f"chain length {len(m.get('knots') or []) + 1}"
    return ""


def run_label(cfg: dict) -> str:
    """A figure's line: method and rank."""
    return f"{method_label(cfg)} r{rank_label(cfg)}"
