"""LoRA+ (Hayou et al., ICML 2024, arXiv 2402.12354): LoRA whose B factor learns λ× faster than A.

The layers are the suite's LoRA; the optimizer is peft's ``create_loraplus_optimizer`` (B's group at λ·lr, A's at
lr; 1-D parameters such as a classification head's bias ride with B, as peft does). MoRA's Table 1 searched
λ ∈ {2, 4}; the LoRA+ paper recommends 2⁴ for LLaMA-scale models.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import require
from .lora import LoRA


class LoRAPlus(LoRA):
    name = "loraplus"
    label = "LoRA+"
    peft_lora_export = False  # exported merged, as the papers' other baselines

    def __init__(self, *args, lr_ratio: float = 4.0, **kwargs):
        super().__init__(*args, **kwargs)
        require(isinstance(lr_ratio, (int, float)) and not isinstance(lr_ratio, bool) and lr_ratio > 0,
                self.name, "lr_ratio", lr_ratio, "a number > 0 (λ: B's learning rate over A's)")
        self.lr_ratio = float(lr_ratio)

    def build_optimizer(self, model: nn.Module, optimizer_cls: type, lr: float, weight_decay: float,
                        **kwargs: Any) -> torch.optim.Optimizer:
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model, optimizer_cls, lr=lr, loraplus_lr_ratio=self.lr_ratio,
                                         loraplus_weight_decay=weight_decay, **kwargs)

    def hparams(self) -> dict:
        return {**super().hparams(), "lr_ratio": self.lr_ratio}
