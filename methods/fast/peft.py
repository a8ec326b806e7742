"""peft's DoRA and AdaLoRA objects with their per-step work done by the fast paths: the one place where a peft object
changes class at run time.

The two baselines keep peft's objects (``methods/peft_backed.py``): its parameters and their names, init, AdaLoRA's
rank allocator, merge and unmerge, saving and loading, so a checkpoint or an export is a peft adapter. Only the
forward changes, and only where it is the plain case — one active adapter, not merged, not disabled, a plain
nn.Linear base in the adapter's dtype, no autocast, no mixed-adapter batch; DoRA also without dropout while
training, where peft applies the magnitude to W·dropout(x), another expression. Everywhere else peft's own forward
runs. The node does the arithmetic the equation needs and no more:

* DoRA — ``methods/fast/dora.py``;
* AdaLoRA — y = x·Wᵀ + b + ((x̃·Pᵀ) ⊙ Λ·s/r)·Qᵀ is LoRA's node (``methods/fast/lora.py``) with the singular values
  Λ as a trained per-column scale, where peft multiplies P ⊙ Λ and scales the T × d output twice;
* AdaLoRA's model skips peft's regulariser at weight 0 and its rank allocator runs on flat buffers
  (``methods/fast/adalora_allocator.py``).

peft's layers reach their forward through Python dispatch per module, which on a small model is most of an
adapter's cost. Each class below subclasses peft's and overrides methods only, so ``install`` can give a model's
peft objects that class (same state, same behaviour elsewhere). Those overrides lean on peft's internals, so the
swap happens only on the peft releases they were held against (``PEFT_RELEASES``); any other release keeps peft's
classes and peft's own forward: slower, never different. The tests hold each against peft's own forward, values and
every gradient.
"""

from __future__ import annotations

import peft
import torch
from packaging.specifiers import SpecifierSet
from peft.tuners.adalora.layer import RankAllocator, SVDLinear
from peft.tuners.adalora.model import AdaLoraModel
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

try:  # recent peft keeps DoRA's math in a LoRA variant; older releases have none, and DoRA keeps peft's forward
    from peft.tuners.lora.variants import DoraLinearVariant
except ImportError:
    DoraLinearVariant = None

from .adalora_allocator import FlatRankAllocator
from .dora import DoraFunction
from .lora import LoraGroupFunction, fusable

# From the suite's lowest supported peft to the newest release the tests held these subclasses against: a newer
# peft may have moved the internals they read.
PEFT_RELEASES = SpecifierSet(">=0.13,<0.22")


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
    (``AdaLoRA.regularization_loss``), so at weight 0 this forward skips it. A nonzero weight keeps peft's forward."""

    def forward(self, *args, **kwargs):
        if self.peft_config[self.trainable_adapter_name].orth_reg_weight == 0:
            return self.model.forward(*args, **kwargs)
        return super().forward(*args, **kwargs)


def _is_dora(layer) -> bool:
    variants = getattr(layer, "lora_variant", None) or {}
    return DoraLinearVariant is not None and any(isinstance(v, DoraLinearVariant) for v in variants.values())


def _swap(obj, peft_class: type, fast_class: type) -> bool:
    """Give ``obj`` ``fast_class`` (a subclass of ``peft_class`` that overrides methods only) where it is exactly a
    ``peft_class`` (a subclass someone else made keeps its own behaviour) and peft is a release in PEFT_RELEASES."""
    if type(obj) is not peft_class or not PEFT_RELEASES.contains(peft.__version__):
        return False
    obj.__class__ = fast_class
    return True


def install_flat_allocator(peft_model: nn.Module) -> bool:
    """Give an AdaLoRA PeftModel's rank allocator FlatRankAllocator (same state, same schedule)."""
    return _swap(getattr(peft_model.base_model, "rankallocator", None), RankAllocator, FlatRankAllocator)


def install(peft_model: nn.Module) -> int:
    """Give a PeftModel's DoRA linear layers, AdaLoRA's SVDLinear layers, its AdaLoraModel and its rank allocator
    their fast classes; returns how many layers changed."""
    layers = sum(_swap(module, SVDLinear, FusedSVDLinear)
                 or (_is_dora(module) and _swap(module, PeftLoraLinear, FusedDoraLinear)) for module in peft_model.modules())
    install_flat_allocator(peft_model)
    _swap(peft_model.base_model, AdaLoraModel, AdaLoraModelWithoutZeroTerm)
    return layers
