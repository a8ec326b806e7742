"""DoRA's adapter as one autograd node, installed as peft's LoRA variant for the suite's ``dora`` baseline.

peft computes DoRA (Liu et al. 2024, Eq. 5, with the norm detached as in its Sec. 4.3) as

    y = Wx + b + (g − 1)·(Wx) + g·s·B·A·x,    g = m / ‖W + s·BA‖ (one norm per output row, no gradient),

from a dozen modules and elementwise ops: ΔW built by passing an identity matrix through A and B, the sum
W + s·ΔW, and three full-size passes over the output and their saved inputs. On a small model those, not the
arithmetic, are DoRA's cost (1.5× our LoRA's overhead beyond arithmetic in ``results/perf.md``). Here, with
pre = Wx + s·B·A·x (the output without bias) and ``result`` = Wx + b the frozen layer's output peft already has,

    forward:  y = g ⊙ (result + s·(xAᵀ)Bᵀ) + (1 − g) ⊙ b     one GEMM added into the output, one scale in place;
    backward: ∂pre = g ⊙ ∂y,  ∂B = g ⊙ (∂yᵀ·h),  ∂A = (∂pre·B)ᵀ·x·s,  ∂x = (∂pre·B)·A·s (+ ∂pre·W via ``result``),
              ∂g = Σ_t ∂y ⊙ pre = Σ_t ∂y ⊙ result + rowsum(B ⊙ (∂yᵀ·h)) − b ⊙ Σ_t ∂y,   ∂m = ∂g / ‖W + s·BA‖,

with h = s·x·Aᵀ; the norm comes from one addmm on d × k per step. Every other part of the layer stays peft's:
its parameters and their names, init, merge and unmerge, saving and loading, so a checkpoint or export is a peft
DoRA adapter. Where the node does not apply (dropout while training, where peft recomputes Wx̃ on the dropped
input; mixed dtypes; a quantised or transposed base), peft's own forward runs. The tests hold the node against
peft's forward, values and every gradient, and against Eq. 5 written out.
"""

from __future__ import annotations

import torch
from torch import nn

from .fused_lora import _mm


class DoraFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, result, lora_A, lora_B, magnitude, weight, bias, scaling: float):
        shape = result.shape
        x2 = x.reshape(-1, x.shape[-1])
        with torch.no_grad():
            weight_norm = torch.linalg.vector_norm(torch.addmm(weight, lora_B, lora_A, alpha=scaling), dim=1)
        scale = magnitude / weight_norm
        hidden = _mm(x2, lora_A.t()).mul_(scaling)
        out = torch.addmm(result.reshape(-1, shape[-1]), hidden, lora_B.t())
        out.mul_(scale)
        if bias is not None:
            out.add_(bias * (1 - scale))
        ctx.save_for_backward(x2, result, lora_A, lora_B, hidden, scale, weight_norm, bias)
        ctx.scaling, ctx.x_shape = scaling, x.shape
        return out.view(shape)

    @staticmethod
    def backward(ctx, grad_out):
        x2, result, lora_A, lora_B, hidden, scale, weight_norm, bias = ctx.saved_tensors
        need_x, need_result, need_A, need_B, need_m, _, need_bias = ctx.needs_input_grad[:7]
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_out_sum = g2.sum(0) if bias is not None and (need_m or need_bias) else None
        grad_pre = g2 * scale
        grad_hidden = _mm(grad_pre, lora_B).mul_(ctx.scaling)                       # T × r, ∂/∂(x·Aᵀ)
        grad_x = (grad_hidden @ lora_A).view(ctx.x_shape) if need_x else None
        grad_A = grad_hidden.t() @ x2 if need_A else None
        grad_B = grad_m = None
        if need_B or need_m:
            out_by_hidden = _mm(g2.t(), hidden)                                      # d × r: ∂yᵀ·h
            grad_B = out_by_hidden * scale[:, None] if need_B else None
            if need_m:
                grad_scale = torch.linalg.vecdot(g2.t(), result.reshape(-1, result.shape[-1]).t())
                grad_scale += (lora_B * out_by_hidden).sum(1)
                if bias is not None:
                    grad_scale -= bias * grad_out_sum
                grad_m = grad_scale / weight_norm
        grad_result = grad_pre.view(grad_out.shape) if need_result else None
        # a trained bias (bias="lora_only") also gets g·Σ∂y through ``result``: 1·Σ∂y in all, as peft's
        grad_bias = (1 - scale) * grad_out_sum if need_bias else None
        return grad_x, grad_result, grad_A, grad_B, grad_m, None, grad_bias, None


def fusable(module, x: torch.Tensor, result: torch.Tensor, adapter: str) -> bool:
    """Plain nn.Linear base, one dtype throughout, no autocast, and no dropout while training (peft's dropout path
    applies the magnitude to W·dropout(x), a different expression)."""
    base = module.get_base_layer()
    dropout = module.lora_dropout[adapter]
    return (type(base) is nn.Linear and not getattr(module, "fan_in_fan_out", False) and not base.weight.requires_grad
            and x.dtype == result.dtype == base.weight.dtype == module.lora_A[adapter].weight.dtype
            and not torch.is_autocast_enabled(x.device.type)
            and (isinstance(dropout, nn.Identity) or not module.training))


def _dora_variant_class():
    """peft's DoRA variant with the forward above; built on first use so importing ``methods`` stays light."""
    from peft.tuners.lora.variants import DoraLinearVariant

    class FusedDoraLinearVariant(DoraLinearVariant):
        @staticmethod
        def forward(module, active_adapter: str, x: torch.Tensor, result: torch.Tensor, **kwargs) -> torch.Tensor:
            if not fusable(module, x, result, active_adapter):
                return DoraLinearVariant.forward(module, active_adapter, x, result, **kwargs)
            base = module.get_base_layer()
            return DoraFunction.apply(x, result, module.lora_A[active_adapter].weight,
                                      module.lora_B[active_adapter].weight,
                                      module.lora_magnitude_vector[active_adapter].weight, base.weight, base.bias,
                                      module.scaling[active_adapter])

    FusedDoraLinearVariant.__qualname__ = FusedDoraLinearVariant.__name__
    return FusedDoraLinearVariant


_VARIANT: type | None = None


def fused_dora_variant() -> type:
    global _VARIANT
    if _VARIANT is None:
        _VARIANT = _dora_variant_class()
    return _VARIANT


def __getattr__(name: str):
    """``methods.fused_dora.FusedDoraLinearVariant`` by name, so a pickled model (torch.save) finds the class."""
    if name == "FusedDoraLinearVariant":
        return fused_dora_variant()
    raise AttributeError(name)


def install_fused_dora(model: nn.Module) -> int:
    """Swap peft's DoRA variant for the fused one on every linear DoRA adapter; returns how many were swapped."""
    from peft.tuners.lora.variants import DoraLinearVariant

    variant = fused_dora_variant()
    count = 0
    for module in model.modules():
        variants = getattr(module, "lora_variant", None)
        if not variants:
            continue
        for name, current in list(variants.items()):
            if type(current) is DoraLinearVariant:
                variants[name] = variant()
                count += 1
    return count
