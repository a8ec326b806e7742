"""OLoRA (Büyükakyüz, arXiv 2406.01775): LoRA initialised from the thin QR of the pretrained weight.

Q, R = qr(W) in fp32; B ← Q[:, :r], A ← R[:r, :]; the frozen base becomes W − s·B·A (cast back to the
base dtype) so the model is unchanged at step 0. The scale is not folded into A or B, exactly as
peft's ``init_lora_weights="olora"``.
"""

from __future__ import annotations

import torch
from torch import nn

from .cost import PerfVariant
from .lora import LoRA, LoraLinear


class OLoraLinear(LoraLinear):
    def __init__(self, base_layer: nn.Linear, r: int, scaling: float, dropout: float):
        super().__init__(base_layer, r, scaling, dropout)
        self._init_from_qr()

    @torch.no_grad()
    def _init_from_qr(self) -> None:
        weight = self.base_layer.weight
        Q, R = torch.linalg.qr(weight.float())  # reduced ("thin") QR: Q (out×m), R (m×in), m = min(out, in)
        self.lora_B.data = Q[:, : self.r].contiguous()
        self.lora_A.data = R[: self.r, :].contiguous()
        residual = weight.float() - self.scaling * (self.lora_B @ self.lora_A)
        weight.data = residual.to(weight.dtype)
        # The initial factors: the original weight is residual + s·B₀·A₀, which a peft export needs.
        self.register_buffer("olora_A0", self.lora_A.detach().clone())
        self.register_buffer("olora_B0", self.lora_B.detach().clone())


class OLoRA(LoRA):
    name = "olora"
    label = "OLoRA"
    layer_class = OLoraLinear
    final_state_keys = ("lora_", "olora_")  # the initial factors: the original weight is residual + s·B₀·A₀
    one_time_cost = "init"                  # the QR of every target weight, once

    def lora_factors(self, layer: OLoraLinear) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual folded in, relative to the original weight: B' = [sB | −sB₀], A' = [A; A₀] (rank 2r, as
        peft's conversion)."""
        B, A = super().lora_factors(layer)
        return (torch.cat([B, -layer.scaling * layer.olora_B0.float()], dim=1),
                torch.cat([A, layer.olora_A0.float()], dim=0))

    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        return [PerfVariant(cls.name, goals=(("vs_lora", 1.02, None),))]
