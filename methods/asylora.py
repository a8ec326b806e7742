"""AsyLoRA: the asymmetric LoRA of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024,
arXiv 2402.16842), the initialisation MoRA's Table 1 adopts.

The paper's finding: A only extracts input features and a random one serves nearly as well as a trained one,
while B carries the update. Its recommended recipe, used here: A is a random orthogonal matrix (rows orthonormal,
drawn uniformly, the Q factor of a Gaussian matrix's QR), frozen; B starts at zero and is the only trained factor,
so an AsyLoRA of rank r trains half of LoRA's parameters (out·r per module). ``train_A=true`` keeps the
orthogonal initialisation but trains A too.
"""

from __future__ import annotations

import torch
from torch import nn

from .cost import ModelShape
from .lora import LoRA, LoraLinear


def random_orthogonal_rows(rows: int, cols: int, device=None) -> torch.Tensor:
    """rows × cols with orthonormal rows (rows ≤ cols), Haar-distributed: QR of a Gaussian, signs fixed by R's
    diagonal so the draw is uniform rather than biased by the QR convention."""
    gaussian = torch.randn(cols, rows, device=device, dtype=torch.float32)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r))).T.contiguous()


class AsyLoraLinear(LoraLinear):
    def __init__(self, base_layer: nn.Linear, r: int, scaling: float, dropout: float, train_A: bool):
        super().__init__(base_layer, r, scaling, dropout)
        with torch.no_grad():
            self.lora_A.copy_(random_orthogonal_rows(r, self.in_features, self.lora_A.device))
        self.lora_A.requires_grad_(train_A)


class AsyLoRA(LoRA):
    name = "asylora"
    label = "AsyLoRA"
    layer_class = AsyLoraLinear
    peft_lora_export = False  # exported merged, as the papers' other baselines

    def __init__(self, *args, train_A: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.train_A = bool(train_A)

    def make_layer(self, name: str, base_layer: nn.Linear) -> AsyLoraLinear:
        return AsyLoraLinear(base_layer, self.r, self.scaling, self.dropout, self.train_A)

    def hparams(self) -> dict:
        return {**super().hparams(), "train_A": self.train_A}

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """LoRA's products less A's weight gradient: the frozen A needs none, 2·(d+k)·r + d·r."""
        return float(sum(2 * (t.d + t.k) * self.r + t.d * self.r for t in shape.targets(self.target_modules)))
