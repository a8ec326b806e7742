"""A DoRA layer as one autograd node (Liu et al. 2024, Eq. 5, the norm detached as in its Sec. 4.3):

    y = g ⊙ pre + b,    pre = x·Wᵀ + (s·x·Aᵀ)·Bᵀ,    g = m / ‖W + s·BA‖ (one norm per output row, no gradient).

peft builds this from a dozen modules and elementwise ops: ΔW by passing an identity matrix through A and B, the
sum W + s·ΔW, and three full-size passes over the output and their saved inputs; on a small model those, not the
arithmetic, are DoRA's cost. Here the norm is expanded so no d × k copy is written (``row_norms_of_sum``), the adapter's product is accumulated into the frozen
one (``addmm_``), and the backward is written out, with h = s·x·Aᵀ:

    ∂pre = g ⊙ ∂y,   ∂x = ∂pre·W + s·(∂pre·B)·A,   ∂A = s·(∂pre·B)ᵀ·x,   ∂B = g ⊙ (∂yᵀ·h),
    ∂m = Σ_t (∂y ⊙ pre) / ‖W + s·BA‖,   ∂b = Σ_t ∂y.

The layer that calls it is peft's (``methods/fast/peft.py``); the tests hold it against peft's forward and against
Eq. 5 written out, values and every gradient.
"""

from __future__ import annotations

import torch

from .lora import _mm


def row_norms_of_sum(weight: torch.Tensor, lora_B: torch.Tensor, lora_A: torch.Tensor, scaling: float) -> torch.Tensor:
    """‖W + s·BA‖ per row, expanded as ‖W_j‖² + 2s·⟨B_j, (W·Aᵀ)_j⟩ + s²·⟨B_j, (B·A·Aᵀ)_j⟩: two reads of W and
    d × r temporaries, where W + s·BA would write and read a d × k copy of every adapted weight each step."""
    weight_by_A = _mm(weight, lora_A.t())                                       # d × r
    squared = torch.linalg.vector_norm(weight, dim=1).square_()
    squared += (2 * scaling) * (lora_B * weight_by_A).sum(1)
    squared += scaling * scaling * (lora_B @ (lora_A @ lora_A.t()) * lora_B).sum(1)
    return squared.clamp_(min=0).sqrt_()


class DoraFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lora_A, lora_B, magnitude, weight, bias, scaling: float):
        x2 = x.reshape(-1, x.shape[-1])
        with torch.no_grad():
            weight_norm = row_norms_of_sum(weight, lora_B, lora_A, scaling)
        scale = magnitude / weight_norm
        hidden = _mm(x2, lora_A.t()).mul_(scaling)
        pre = (x2 @ weight.t()).addmm_(hidden, lora_B.t())
        out = pre * scale if bias is None else torch.addcmul(bias, pre, scale)
        ctx.save_for_backward(x2, weight, lora_A, lora_B, hidden, pre, scale, weight_norm)
        ctx.scaling, ctx.x_shape = scaling, x.shape
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad_out):
        x2, weight, lora_A, lora_B, hidden, pre, scale, weight_norm = ctx.saved_tensors
        need_x, need_A, need_B, need_m, _, need_bias = ctx.needs_input_grad[:6]
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_pre = g2 * scale
        grad_hidden = _mm(grad_pre, lora_B).mul_(ctx.scaling)                     # T × r: ∂/∂(x·Aᵀ)
        grad_x = (grad_pre @ weight).addmm_(grad_hidden, lora_A).view(ctx.x_shape) if need_x else None
        grad_A = grad_hidden.t() @ x2 if need_A else None
        grad_B = _mm(g2.t(), hidden).mul_(scale[:, None]) if need_B else None
        grad_m = torch.linalg.vecdot(g2.t(), pre.t()).div_(weight_norm) if need_m else None
        grad_bias = g2.sum(0) if need_bias else None
        return grad_x, grad_A, grad_B, grad_m, None, grad_bias, None
