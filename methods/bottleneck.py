"""Bottleneck adapters, the Adapter^H and Adapter^P rows of SaLoRA's Table 1, on the suite's own base (the AdapterHub
``adapters`` package pins transformers ~=4.57, which this stack has outgrown).

* **adapter_h** — Houlsby et al. (ICML 2019): a bottleneck after the attention block's output projection and
  after the feed-forward block's, inside the residual: h ← h + up(φ(down(h))), φ = swish (AdapterHub's Houlsby).
* **adapter_p** — Pfeiffer et al. (EACL 2021): after the feed-forward block only, φ = ReLU.

Each adapter wraps the sublayer's output projection (o_proj / down_proj on Llama, out_proj / fc2 on OPT,
attention.output.dense / output.dense on RoBERTa), so it sees that projection's output before the residual add.
``up`` starts at zero: the model is unchanged at step 0, as LoRA's B = 0.

**Parameter budget.** LoRA of rank r on q and v of a width-d model trains 2·2·d·r per layer. A bottleneck of width m
trains 2·d·m + m + d. So ``bottleneck`` defaults to r × 2 / (adapters per layer): Houlsby's two adapters get width r,
Pfeiffer's one gets 2r, the same count as LoRA r on q, v up to the biases. Not mergeable: φ is non-linear.
"""

from __future__ import annotations

import re
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import AdapterMethod, invalid, require
from .cost import ModelShape

# The sublayer output projections per architecture (model.config.model_type): (attention, feed-forward).
OUTPUT_PROJECTIONS = {
    "llama": (r".*\.self_attn\.o_proj", r".*\.mlp\.down_proj"),
    "opt": (r".*\.self_attn\.out_proj", r".*\.fc2"),
    "roberta": (r".*\.attention\.output\.dense", r".*\.layer\.\d+\.output\.dense"),
}
ACTIVATIONS = {"swish": F.silu, "relu": F.relu}
LORA_MODULES_PER_LAYER = 2  # the budget reference: LoRA on q_proj and v_proj


class BottleneckAdapter(nn.Module):
    """y = W x + b, then y + up(φ(down(y))): wraps the frozen output projection."""

    def __init__(self, base_layer: nn.Linear, bottleneck: int, activation: str):
        super().__init__()
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad_(False)
        width, device = base_layer.out_features, base_layer.weight.device
        self.adapter_down = nn.Linear(width, bottleneck, device=device, dtype=torch.float32)
        self.adapter_up = nn.Linear(bottleneck, width, device=device, dtype=torch.float32)
        nn.init.zeros_(self.adapter_up.weight)
        nn.init.zeros_(self.adapter_up.bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base_layer(x)
        delta = self.adapter_up(ACTIVATIONS[self.activation](self.adapter_down(h.float())))
        return h + delta.to(h.dtype)

    def extra_repr(self) -> str:
        return f"bottleneck={self.adapter_down.out_features}, activation={self.activation}"


class Bottleneck(AdapterMethod):
    """Shared by Houlsby and Pfeiffer; they differ in positions and activation."""

    positions: ClassVar[tuple[int, ...]] = ()   # indices into OUTPUT_PROJECTIONS[model_type]
    activation: ClassVar[str] = "relu"
    low_rank_family = False
    mergeable = False

    def __init__(self, *args, bottleneck: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        require(bottleneck is None or (isinstance(bottleneck, int) and not isinstance(bottleneck, bool) and bottleneck > 0),
                self.name, "bottleneck", bottleneck, "an integer >= 1, or null for r × 2 / adapters per layer")
        self.bottleneck = bottleneck or max(1, self.r * LORA_MODULES_PER_LAYER // len(self.positions))

    def target_layers(self, model: nn.Module) -> list[tuple[str, nn.Linear]]:
        """The sublayer output projections of this architecture at the method's positions."""
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in OUTPUT_PROJECTIONS:
            raise invalid(self.name, "model", model_type, f"a model of type {sorted(OUTPUT_PROJECTIONS)}")
        patterns = [OUTPUT_PROJECTIONS[model_type][i] for i in self.positions]
        return [(name, module) for name, module in model.named_modules()
                if isinstance(module, nn.Linear) and any(re.fullmatch(p, name) for p in patterns)]

    def make_layer(self, name: str, base_layer: nn.Linear) -> BottleneckAdapter:
        return BottleneckAdapter(base_layer, self.bottleneck, self.activation)

    def merge(self, model: nn.Module) -> nn.Module:
        raise ValueError(f"{self.name}: not mergeable (a non-linear bottleneck); export the adapter weights instead")

    def hparams(self) -> dict:
        return {"bottleneck": self.bottleneck, "activation": self.activation, "positions": len(self.positions)}

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """A bottleneck of width m after each wrapped projection of width d: 3·2·d·m."""
        wrapped = {name for name, _ in self.target_layers(base)}
        return float(sum(3 * 2 * lin.d * self.bottleneck for lin in shape.linears if lin.name in wrapped))


class HoulsbyAdapter(Bottleneck):
    name = "adapter_h"
    label = "Adapter^H"
    positions = (0, 1)
    activation = "swish"


class PfeifferAdapter(Bottleneck):
    name = "adapter_p"
    label = "Adapter^P"
    positions = (1,)
    activation = "relu"
