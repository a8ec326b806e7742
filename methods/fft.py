"""Full fine-tuning: every weight of the model trains, no wrapper. The papers' FFT / FT rows.

``r`` is accepted for a uniform config surface and ignored (the result's rank reads "–"). Merging is the
identity: the trained model is the merged model.
"""

from __future__ import annotations

from torch import nn

from .base import AdapterMethod
from .cost import ModelShape


class FullFineTuning(AdapterMethod):
    name = "fft"
    label = "FFT"
    low_rank_family = False
    rankless = True

    def apply(self, model: nn.Module) -> nn.Module:
        for param in model.parameters():
            param.requires_grad_(True)
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        return model

    def hparams(self) -> dict:
        return {}

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """Every linear layer's weight gradient, F_linear."""
        return shape.linear_macs()
