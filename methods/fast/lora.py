"""LoRA layers as one autograd node: for n layers that read one input x (n = 1, or q/k/v, gate/up),

    y_i = x·W_iᵀ + b_i + ((x̃·A_catᵀ) ⊙ c)[:, cols_i]·B_iᵀ,

with x̃ = dropout(x), A_cat the layers' A stacked by rows, and c the per-column scale: s_i (times SaLoRA's gate
g_i where there is one) over layer i's r_i columns.

Composed from modules, an adapter is a dozen autograd nodes per layer (two linears on 3-D inputs, the scale, the
sum with the frozen output, casts) and two extra full-size passes over the output and its gradient. On a small
model those, not the arithmetic, are LoRA's cost. Here each adapter's output is accumulated into its frozen
layer's by the second GEMM (``addmm_``), the scale and gate act on the T×r hidden only, and the backward's input
gradients (frozen and adapter) are accumulated into one buffer the same way. Layers that read one input share
the input's products: one x·A_catᵀ forward and one A_cat gradient and one input gradient backward, where
per-layer nodes pay n thin GEMMs each. The math is unchanged: the tests hold this node against the modules'
composition, values and gradients, and against the dense ΔW.

Products whose output has fewer than 16 columns (x·A_catᵀ at small ranks, the scaled hidden's gradient T × r and
B's gradient d × r) are computed as the transpose of their few-row product: the same sums, which torch's CPU BLAS
runs faster as a few-row product than as a few-column one.
"""

from __future__ import annotations

from typing import Sequence

import torch


NARROW_COLUMNS = 16


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a·b; as (bᵀ·aᵀ)ᵀ, a view, when b has fewer than NARROW_COLUMNS columns (see the module docstring)."""
    return (b.t() @ a.t()).t() if b.shape[1] < NARROW_COLUMNS else a @ b


def _column_slices(splits: Sequence[int]) -> list[slice]:
    starts = [0]
    for r in splits:
        starts.append(starts[-1] + r)
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


class LoraGroupFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, x_adapter, lora_A, column_scale, splits: tuple[int, ...], *members):
        # members: (W_1, b_1, B_1, W_2, b_2, B_2, …); column_scale: a tensor over A_cat's rows, or one float
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xa2 = x2 if x_adapter is x else x_adapter.reshape(-1, shape[-1])
        hidden = _mm(xa2, lora_A.t())
        scaled = hidden * column_scale
        outs = []
        for i, cols in enumerate(_column_slices(splits)):
            weight, bias, lora_B = members[3 * i: 3 * i + 3]
            out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
            out.addmm_(scaled[:, cols], lora_B.t())
            outs.append(out.view(*shape[:-1], out.shape[-1]))
        scale_tensor = column_scale if isinstance(column_scale, torch.Tensor) else None
        ctx.save_for_backward(xa2, lora_A, hidden, scaled, scale_tensor, *members)
        ctx.column_scale = None if scale_tensor is not None else column_scale
        ctx.splits, ctx.shared_input, ctx.x_shape = splits, x_adapter is x, shape
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grad_outs):
        xa2, lora_A, hidden, scaled, scale_tensor, *members = ctx.saved_tensors
        need_x, need_xa, need_A, need_scale = ctx.needs_input_grad[:4]
        need_members = ctx.needs_input_grad[5:]
        column_scale = scale_tensor if scale_tensor is not None else ctx.column_scale
        grad_scaled = torch.empty_like(hidden)
        grad_x = None
        grad_members: list[torch.Tensor | None] = []
        for i, (cols, grad_out) in enumerate(zip(_column_slices(ctx.splits), grad_outs)):
            weight, _, lora_B = members[3 * i: 3 * i + 3]
            _, need_bias, need_B = need_members[3 * i: 3 * i + 3]
            g2 = grad_out.reshape(-1, grad_out.shape[-1])
            grad_scaled[:, cols] = _mm(g2, lora_B)                     # T × r_i
            if need_x:  # every layer's input gradient accumulated into one buffer by the GEMMs
                grad_x = g2 @ weight if grad_x is None else grad_x.addmm_(g2, weight)
            grad_members += [None, g2.sum(0) if need_bias else None, _mm(g2.t(), scaled[:, cols]) if need_B else None]
        grad_scale = (grad_scaled * hidden).sum(0) if need_scale else None
        grad_hidden = grad_scaled * column_scale
        grad_A = grad_hidden.t() @ xa2 if need_A else None
        grad_xa = None
        if ctx.shared_input:
            if need_x:
                grad_x = grad_x.addmm_(grad_hidden, lora_A)
        elif need_xa:
            grad_xa = (grad_hidden @ lora_A).view(ctx.x_shape)
        if grad_x is not None:
            grad_x = grad_x.view(ctx.x_shape)
        return (grad_x, grad_xa, grad_A, grad_scale, None, *grad_members)


def fusable(x: torch.Tensor, weight: torch.Tensor, lora_A: torch.Tensor) -> bool:
    """One dtype throughout, a frozen base weight, no autocast: otherwise the modules' composition (it casts)."""
    return (x.dtype == weight.dtype == lora_A.dtype and not weight.requires_grad
            and not torch.is_autocast_enabled(x.device.type))


def lora_group(x: torch.Tensor, x_adapter: torch.Tensor, layers: Sequence) -> tuple[torch.Tensor, ...]:
    """Every layer's output on input x (``layers``: LoraLinear-like, each with base_layer, lora_A, lora_B, scaling
    and gate())."""
    gates = [layer.gate() for layer in layers]
    if len(layers) == 1:
        lora_A = layers[0].lora_A
    else:
        lora_A = torch.cat([layer.lora_A for layer in layers])
    if all(g is None for g in gates) and len({layer.scaling for layer in layers}) == 1:
        column_scale: torch.Tensor | float = layers[0].scaling
    else:
        column_scale = torch.cat([
            g * layer.scaling if g is not None else lora_A.new_full((layer.r,), layer.scaling)
            for g, layer in zip(gates, layers)])
    members = [t for layer in layers for t in (layer.base_layer.weight, layer.base_layer.bias, layer.lora_B)]
    splits = tuple(layer.lora_A.shape[0] for layer in layers)
    return LoraGroupFunction.apply(x, x_adapter, lora_A, column_scale, splits, *members)
