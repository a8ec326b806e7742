"""LoRA (Hu et al., 2021): y = Wx + s·B·A·dropout(x), A kaiming-uniform(a=√5), B zero."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import SIBLINGS_READING_ONE_INPUT, AdapterLinear, AdapterMethod
from .cost import ModelShape, low_rank_macs
from .fast.lora import fusable, lora_group


def kaiming_uniform_A(rows: int, cols: int, device=None) -> torch.Tensor:
    """nn.Linear's default init, the one peft and the reference LoRA use for A."""
    weight = torch.empty(rows, cols, device=device, dtype=torch.float32)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight


def gaussian_A(rows: int, cols: int, device=None) -> torch.Tensor:
    """peft's init_lora_weights='gaussian': N(0, 1/r)."""
    return torch.randn(rows, cols, device=device, dtype=torch.float32) / rows


A_INITS = {"kaiming": kaiming_uniform_A, "gaussian": gaussian_A}


class LoraLinear(AdapterLinear):
    def __init__(self, base_layer: nn.Linear, r: int, scaling: float, dropout: float):
        super().__init__(base_layer)
        self.r = r
        self.scaling = scaling
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        device = base_layer.weight.device
        self.lora_A = nn.Parameter(kaiming_uniform_A(r, self.in_features, device))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, device=device))
        self.retired_links: list[tuple[torch.Tensor, torch.Tensor, float]] = []

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.linear(self.lora_dropout(x), self.lora_A)
        gate = self.gate()
        if gate is not None:
            hidden = hidden * gate.to(hidden.dtype)
        return F.linear(hidden, self.lora_B) * self.scaling

    def gate(self) -> torch.Tensor | None:
        """A per-rank multiplier of the hidden x·Aᵀ (SaLoRA's G) for both paths, fused and composed; plain LoRA has none."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fused node (methods/fast/lora.py) where it applies, shared with the siblings that read the same x
        (methods/fast/shared_input.py); the modules' composition otherwise."""
        if not fusable(x, self.base_layer.weight, self.lora_A):
            return super().forward(x)
        shared = self.shared_output(x)
        if shared is not None:
            return shared
        (out,) = lora_group(x, self.lora_dropout(x), [self])
        return out

    @classmethod
    def group_forward(cls, x, layers):
        """One node for the group where no layer has dropout (a shared x̃ would share its mask)."""
        if all(isinstance(layer.lora_dropout, nn.Identity) and fusable(x, layer.base_layer.weight, layer.lora_A)
               for layer in layers):
            return lora_group(x, x, layers)
        return None

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B.float() @ self.lora_A.float()) * self.scaling

    def retired_delta(self) -> torch.Tensor | float:
        return sum(((B.float() @ A.float()) * scaling for A, B, scaling in self.retired_links), 0.0)

    @torch.no_grad()
    def reset_link(self, r: int, scaling: float, a_init: str = "kaiming") -> list[nn.Parameter]:
        """Start a fresh (A, B) pair of rank r; returns the parameters whose optimizer state must go.

        Same rank: re-initialised in place, so DDP/FSDP keep their parameter registrations. A new rank
        (COLA's step-down) needs new parameters. The retired link is kept (detached) in ``retired_links``
        so an export can rebuild the whole chain.
        """
        self.retired_links.append((self.lora_A.detach().clone(), self.lora_B.detach().clone(), self.scaling))
        device = self.lora_A.device
        fresh_A = A_INITS[a_init](r, self.in_features, device)
        if r == self.r:
            self.lora_A.copy_(fresh_A)
            self.lora_B.zero_()
        else:
            self.lora_A = nn.Parameter(fresh_A)
            self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, device=device))
        self.r, self.scaling = r, scaling
        return [self.lora_A, self.lora_B]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, scaling={self.scaling:g}"


class LoRA(AdapterMethod):
    name = "lora"
    label = "LoRA"
    layer_class = LoraLinear
    shared_input_siblings = SIBLINGS_READING_ONE_INPUT
    peft_lora_export = True
    final_state_keys = ("lora_",)

    def make_layer(self, name: str, base_layer: nn.Linear) -> AdapterLinear:
        return self.layer_class(base_layer, self.r, self.scaling, self.dropout)

    def lora_factors(self, layer: LoraLinear) -> tuple[torch.Tensor, torch.Tensor]:
        """Every link of the chain (the retired ones a knot folded into the base, then the live one) side by side:
        B' = [s₁B₁ | … | s_cB_c], A' = [A₁; …; A_c]."""
        links = [*layer.retired_links, (layer.lora_A.detach(), layer.lora_B.detach(), layer.scaling)]
        Bs = [s * B.float() for A, B, s in links]
        As = [A.float() for A, B, s in links]
        return torch.cat(Bs, dim=1), torch.cat(As, dim=0)

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        return float(low_rank_macs(shape.targets(self.target_modules), self.r))
