"""Shared fixtures: tiny models of the three architectures the papers use, and the shared data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import (
    LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM, RobertaConfig, RobertaForSequenceClassification,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LORABENCH_SHARED", REPO.parent / "shared"))
STORIES = SHARED / "data" / "models" / "stories260K"

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
OPT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
ROBERTA_TARGETS = ["query", "key", "value", "dense"]
VOCAB = 96


def tiny_llama() -> torch.nn.Module:
    # intermediate 80 with hidden 48: non-divisible shapes for MoRA's padding paths
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg)


def tiny_opt() -> torch.nn.Module:
    cfg = OPTConfig(vocab_size=VOCAB, hidden_size=40, ffn_dim=72, num_hidden_layers=2, num_attention_heads=4,
                    word_embed_proj_dim=40, max_position_embeddings=64)
    return OPTForCausalLM(cfg)


def tiny_roberta() -> torch.nn.Module:
    cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=40, intermediate_size=72, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=70, type_vocab_size=1, num_labels=3)
    return RobertaForSequenceClassification(cfg)


ARCHS = {
    "llama": (tiny_llama, LLAMA_TARGETS),
    "opt": (tiny_opt, OPT_TARGETS),
    "roberta": (tiny_roberta, ROBERTA_TARGETS),
}


def model_output(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits


@pytest.fixture
def input_ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.randint(3, VOCAB, (2, 9), generator=g)


@pytest.fixture(scope="session")
def stories_dir() -> Path:
    if not (STORIES / "config.json").exists():
        pytest.fail(f"pretrained tiny model not found at {STORIES}; set LORABENCH_SHARED to the shared/ folder")
    return STORIES
