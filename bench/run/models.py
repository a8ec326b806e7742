"""Model + tokenizer loading: hub ids (paper scale), local directories, or configs with random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ..errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HEADS = {"causal_lm": AutoModelForCausalLM, "seq_cls": AutoModelForSequenceClassification}


def tokenizer_revision(model_cfg: Any) -> str | None:
    """The pinned hub commit of the tokenizer: its own ``tokenizer_revision``, else the model's when both are one repo."""
    if model_cfg.get("tokenizer_revision"):
        return model_cfg.tokenizer_revision
    return model_cfg.get("revision") if model_cfg.source == "hub" and model_cfg.tokenizer == model_cfg.path else None


def load_tokenizer(model_cfg: Any):
    name = model_cfg.tokenizer
    if model_cfg.source == "local" and not Path(model_cfg.path).is_dir():
        raise UserError(f"model.path={model_cfg.path!r} is not a directory; expected a transformers model dir (config.json + weights)")
    try:
        tok = AutoTokenizer.from_pretrained(name, revision=tokenizer_revision(model_cfg))
    except (OSError, ValueError) as err:
        raise UserError(f"model.tokenizer={name!r} cannot be loaded (not a local directory and no hub access?): "
                        f"{str(err).splitlines()[0]}") from err
    if tok.pad_token is None:  # stories260K and Llama tokenizers ship without one
        tok.pad_token = tok.unk_token or tok.eos_token
    return tok


def load_model(model_cfg: Any, head: str, num_labels: int | None = None, tokenizer=None):
    """Return a model with the given head ('causal_lm' or 'seq_cls') per ``model.source``: hub, local or config."""
    if head not in HEADS:
        raise UserError(f"task head={head!r}; valid: {sorted(HEADS)}")
    if model_cfg.dtype not in DTYPES:
        raise UserError(f"model.dtype={model_cfg.dtype!r}; valid: {sorted(DTYPES)}")
    dtype = DTYPES[model_cfg.dtype]
    extra = {"num_labels": num_labels} if head == "seq_cls" and num_labels else {}
    auto = HEADS[head]
    source = model_cfg.source
    if source == "config":
        config = AutoConfig.for_model(**dict(model_cfg.config), **extra)
        if tokenizer is not None:
            config.vocab_size = max(config.vocab_size, len(tokenizer))
            config.pad_token_id = tokenizer.pad_token_id
        model = auto.from_config(config, dtype=dtype)
    elif source in ("hub", "local"):
        path = model_cfg.path
        if source == "local" and not Path(path).is_dir():
            raise UserError(f"model.path={path!r} is not a directory; expected a transformers model dir (config.json + weights)")
        try:
            revision = model_cfg.get("revision") if source == "hub" else None
            model = auto.from_pretrained(path, dtype=dtype, revision=revision, **extra)
        except (OSError, ValueError) as err:
            raise UserError(f"model.path={path!r} cannot be loaded (no hub access or not a model?): {str(err).splitlines()[0]}") from err
    else:
        raise UserError(f"model.source={source!r}; valid: ['config', 'hub', 'local']")
    if head == "seq_cls" and tokenizer is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
