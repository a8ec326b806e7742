"""peft's DoRA and AdaLoRA layers with their forward computed by one fused autograd node.

The two baselines keep peft's layers (``methods/peft_backed.py``): its parameters and their names, init, AdaLoRA's
rank allocator, merge and unmerge, saving and loading, so a checkpoint or an export is a peft adapter. Only the
forward changes, and only where it is the plain case — one active adapter, not merged, not disabled, a plain
nn.Linear base in the adapter's dtype, no autocast, no mixed-adapter batch; DoRA also without dropout while
training, where peft applies the magnitude to W·dropout(x), another expression. Everywhere else peft's own forward
runs. The node does the arithmetic the equation needs and no more:

* DoRA — ``methods/fused_dora.py``;
* AdaLoRA — y = x·Wᵀ + b + ((x̃·Pᵀ) ⊙ Λ·s/r)·Qᵀ is LoRA's node (``methods/fused_lora.py``) with the singular values
  Λ as a trained per-column scale, where peft multiplies P ⊙ Λ and scales the T × d output twice.

peft's layers reach their forward through Python dispatch per module, which on a small model is most of an
adapter's cost; the subclasses below override only ``forward``, and ``install_fused_forwards`` gives a model's
layers that class (same state, same behaviour elsewhere). The tests hold each against peft's own forward, values
and every gradient.
"""

from __future__ import annotations

import torch
from peft.tuners.adalora.layer import SVDLinear
from peft.tuners.adalora.model import AdaLoraModel
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

try:  # recent peft keeps DoRA's math in a LoRA variant; older releases have none, and DoRA keeps peft's forward
    from peft.tuners.lora.variants import DoraLinearVariant
except ImportError:
    DoraLinearVariant = None

from .fused_dora import DoraFunction
from .fused_lora import LoraGroupFunction, fusable


def _the_plain_case(layer, x: torch.Tensor, lora_A: torch.Tensor | None, args, kwargs) -> bool:
    """True where the fused node computes exactly what peft's forward would (see the module docstring)."""
    if args or kwargs or layer.disable_adapters or layer.merged or lora_A is None:
        return False
    base = layer.get_base_layer()
    return type(base) is nn.Linear and not getattr(layer, "fan_in_fan_out", False) and fusable(x, base.weight, lora_A)


def _only_active_adapter(layer) -> str | None:
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    return active[0] if len(active) == 1 else None


class FusedDoraLinear(PeftLoraLinear):
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        adapter = _only_active_adapter(self)
        lora_A = self.lora_A[adapter].weight if adapter is not None else None
        if (not _the_plain_case(self, x, lora_A, args, kwargs)
                or not isinstance(self.lora_variant.get(adapter), DoraLinearVariant)
                or (self.training and not isinstance(self.lora_dropout[adapter], nn.Identity))):
            return super().forward(x, *args, **kwargs)
        base = self.get_base_layer()
        return DoraFunction.apply(x, lora_A, self.lora_B[adapter].weight, self.lora_magnitude_vector[adapter].weight,
                                  base.weight, base.bias, self.scaling[adapter])


class FusedSVDLinear(SVDLinear):
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        adapter = _only_active_adapter(self)
        lora_A = self.lora_A[adapter] if adapter is not None else None
        if not _the_plain_case(self, x, lora_A, args, kwargs):
            return super().forward(x, *args, **kwargs)
        base = self.get_base_layer()
        # peft's s / (r + 1e-5), r the module's initial rank (``ranknum``; pruned components are zeros in Λ)
        column_scale = self.lora_E[adapter].view(-1) * (self.scaling[adapter] / (self.ranknum[adapter] + 1e-5))
        (out,) = LoraGroupFunction.apply(x, self.lora_dropout[adapter](x), lora_A, column_scale, (lora_A.shape[0],),
                                         base.weight, base.bias, self.lora_B[adapter])
        return out


class AdaLoraModelWithoutZeroTerm(AdaLoraModel):
    """peft's AdaLoraModel adds ``orth_reg_weight`` × its orthogonal regulariser to the loss even at weight 0: a Gram
    product per P and Q every forward, and their backward, for a term and gradients that are zeros wherever the
    regulariser is finite (0 × inf would be NaN). The suite sets the weight to 0 and adds the term itself
    (``AdaLoRA.regularization_loss``), so at weight 0 this forward skips it: 5-6% of AdaLoRA's step inside its window
    on ``bench.perf``'s model (paired, r 8 and r 64). A nonzero weight keeps peft's forward."""

    def forward(self, *args, **kwargs):
        if self.peft_config[self.trainable_adapter_name].orth_reg_weight == 0:
            return self.model.forward(*args, **kwargs)
        return super().forward(*args, **kwargs)


def skip_zero_weight_regulariser(peft_model: nn.Module) -> None:
    """Give an AdaLoRA PeftModel's AdaLoraModel the forward above (same state, as FlatRankAllocator.install)."""
    if type(peft_model.base_model) is AdaLoraModel:
        peft_model.base_model.__class__ = AdaLoraModelWithoutZeroTerm


def _is_dora(layer) -> bool:
    variants = getattr(layer, "lora_variant", None) or {}
    return DoraLinearVariant is not None and any(isinstance(v, DoraLinearVariant) for v in variants.values())


def install_fused_forwards(model: nn.Module) -> int:
    """Give peft's DoRA linear layers and AdaLoRA's SVDLinear layers the fused forward; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is PeftLoraLinear and _is_dora(module):
            module.__class__ = FusedDoraLinear
        elif type(module) is SVDLinear:
            module.__class__ = FusedSVDLinear
        else:
            continue
        count += 1
    return count
