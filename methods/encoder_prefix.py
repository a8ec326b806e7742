"""Prefix-tuning (Li & Liang, ACL 2021) on bidirectional encoders, where peft's implementation cannot reach.

peft hands the prefixes to the backbone as past key values; transformers 5's encoders (RoBERTa, BERT) take none, so
peft's prefix-tuning fails on the classification models of SaLoRA's Table 1. This module is the same method with
peft's parameterisation (``PrefixTuningConfig(prefix_projection=False)``): every self-attention layer gets
``num_virtual_tokens`` trained key and value vectors per head, drawn N(0, 1) as peft's ``nn.Embedding`` draws them,
that every query attends to beside the real tokens. The trainable count is peft's: P × layers × 2 × hidden.

The prefixes enter through transformers' own extension point, a registered attention function
(``AttentionInterface``): it prepends the layer's prefixes to the keys and values and widens the padding mask by P
always-visible columns, then runs torch's scaled-dot-product attention as the ``sdpa`` implementation does. The
model's modules are untouched; only ``config._attn_implementation`` names the function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_NAME = "lorabench_prefix"
PREFIX_PARAMETERS = ("prefix_key", "prefix_value")


def prefix_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs) -> tuple[torch.Tensor, None]:
    """softmax(q·[Pk; K]ᵀ·s + mask)·[Pv; V] with query, key, value as (batch, heads, length, head_dim)."""
    batch = query.shape[0]
    prefix_key = module.prefix_key.to(key.dtype).unsqueeze(0).expand(batch, -1, -1, -1)
    prefix_value = module.prefix_value.to(value.dtype).unsqueeze(0).expand(batch, -1, -1, -1)
    key, value = torch.cat([prefix_key, key], dim=2), torch.cat([prefix_value, value], dim=2)
    if attention_mask is not None:
        # The prefixes are visible to every query: True in a boolean mask, 0 in an additive one.
        visible = (torch.ones if attention_mask.dtype == torch.bool else torch.zeros)(
            *attention_mask.shape[:-1], prefix_key.shape[2], dtype=attention_mask.dtype, device=attention_mask.device)
        attention_mask = torch.cat([visible, attention_mask], dim=-1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                         dropout_p=dropout if module.training else 0.0)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, prefix_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)  # the same padding mask the sdpa path builds


def self_attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """BERT-family self-attention modules: linear ``key`` and ``value`` projections and a head count."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(getattr(module, "key", None), nn.Linear) and isinstance(getattr(module, "value", None), nn.Linear)
            and hasattr(module, "num_attention_heads")]


def add_encoder_prefixes(model: nn.Module, num_virtual_tokens: int) -> nn.Module:
    """Give every self-attention layer its trained prefixes and route attention through ``prefix_attention``."""
    layers = self_attention_layers(model)
    if not layers or any(getattr(m, "is_causal", False) for _, m in layers):
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ValueError(f"prefix: model type {kind!r} has no bidirectional self-attention layers with key/value "
                         "projections (valid here: encoders such as roberta, bert)")
    _register()
    for _, module in layers:
        heads, head_dim = module.num_attention_heads, module.key.out_features // module.num_attention_heads
        device = module.key.weight.device
        for param_name in PREFIX_PARAMETERS:
            module.register_parameter(param_name, nn.Parameter(
                torch.randn(heads, num_virtual_tokens, head_dim, device=device, dtype=torch.float32)))
    model.set_attn_implementation(ATTENTION_NAME)
    return model
