"""MoRA's truncation and (interleaved) sharing as one autograd node, for n layers that read one input x:

    y_i = x·W_iᵀ + b_i + decompress(compress(x)·M_iᵀ),

where (k ≥ r̂) compress keeps the first r̂ inputs (truncation) or sums the inputs by t mod r̂ with wrap-around
padding (sharing), and decompress adds output i of M's into y at i (truncation) or at every i mod r̂ (tiling).

Composed from tensor ops, autograd pays for the slicing: each slice of x's compression and each in-place add of
the decompression comes back in the backward as a zero-filled full-size gradient, copied and summed. Here the
backward writes the two adjoints directly: decompress's (a block sum of the output gradient, T × r̂) and
compress's (the T × r̂ gradient added into the input gradient's blocks in place), beside the frozen layers' input
gradient, accumulated by the GEMMs into one buffer. The math is unchanged: the tests hold this node against the
composed operators (methods/mora.py), values and gradients, and against the dense ΔW.
"""

from __future__ import annotations

from typing import Sequence

import torch


def compress(x2: torch.Tensor, r_hat: int, truncation: bool) -> torch.Tensor:
    """T × k → T × r̂: the first r̂ inputs, or the sum of inputs by t mod r̂ (padded position t reads input t mod k)."""
    if truncation:
        return x2[:, :r_hat]
    k = x2.shape[1]
    full = k // r_hat * r_hat
    summed = x2[:, :full].unflatten(-1, (full // r_hat, r_hat)).sum(dim=-2)
    tail = k - full
    if tail:  # the last block: the tail of x, then the wrap-around padding
        summed[:, :tail] += x2[:, full:]
        summed[:, tail:] += x2[:, : r_hat - tail]
    return summed


def compress_adjoint_(grad_x: torch.Tensor, grad_c: torch.Tensor, r_hat: int, truncation: bool) -> None:
    """grad_x += compressᵀ(grad_c), in place."""
    if truncation:
        grad_x[:, :r_hat] += grad_c
        return
    k = grad_x.shape[1]
    full = k // r_hat * r_hat
    grad_x[:, :full].unflatten(-1, (full // r_hat, r_hat)).add_(grad_c.unsqueeze(-2))
    tail = k - full
    if tail:
        grad_x[:, full:] += grad_c[:, :tail]
        grad_x[:, : r_hat - tail] += grad_c[:, tail:]


def add_decompressed_(out: torch.Tensor, h: torch.Tensor, truncation: bool) -> torch.Tensor:
    """out += decompress(h), in place (the last dims: d outputs, r̂ of h)."""
    d, r_hat = out.shape[-1], h.shape[-1]
    if truncation or d <= r_hat:
        out[..., : min(d, r_hat)] += h[..., : min(d, r_hat)]
        return out
    whole = d // r_hat * r_hat  # tiling: output i reads h[i mod r̂]
    out[..., :whole].unflatten(-1, (whole // r_hat, r_hat)).add_(h.unsqueeze(-2))
    if whole < d:
        out[..., whole:] += h[..., : d - whole]
    return out


def decompress_adjoint(g2: torch.Tensor, r_hat: int, truncation: bool, out: torch.Tensor) -> None:
    """out (T × r̂) = decompressᵀ(g2), g2 the T × d output gradient."""
    d = g2.shape[1]
    if truncation or d <= r_hat:
        out[:, : min(d, r_hat)] = g2[:, : min(d, r_hat)]
        out[:, min(d, r_hat):] = 0
        return
    whole = d // r_hat * r_hat
    out.copy_(g2[:, :whole].unflatten(-1, (whole // r_hat, r_hat)).sum(dim=-2))
    if whole < d:
        out[:, : d - whole] += g2[:, whole:]


class MoraGroupFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, M_cat, r_hat: int, truncation: bool, *members):
        # members: (W_1, b_1, W_2, b_2, …); M_cat: the layers' M stacked by rows (n·r̂ × r̂)
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        c = compress(x2, r_hat, truncation)
        h = c @ M_cat.t()
        outs = []
        for i in range(len(members) // 2):
            weight, bias = members[2 * i: 2 * i + 2]
            out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
            add_decompressed_(out, h[:, i * r_hat: (i + 1) * r_hat], truncation)
            outs.append(out.view(*shape[:-1], out.shape[-1]))
        ctx.save_for_backward(c, M_cat, *members)
        ctx.r_hat, ctx.truncation, ctx.x_shape = r_hat, truncation, shape
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grad_outs):
        c, M_cat, *members = ctx.saved_tensors
        r_hat, truncation = ctx.r_hat, ctx.truncation
        need_x, need_M = ctx.needs_input_grad[:2]
        need_members = ctx.needs_input_grad[4:]
        grad_h = c.new_empty(c.shape[0], M_cat.shape[0])
        grad_x = None
        grad_members: list[torch.Tensor | None] = []
        for i, grad_out in enumerate(grad_outs):
            weight = members[2 * i]
            g2 = grad_out.reshape(-1, grad_out.shape[-1])
            decompress_adjoint(g2, r_hat, truncation, grad_h[:, i * r_hat: (i + 1) * r_hat])
            if need_x:  # every layer's input gradient accumulated into one buffer by the GEMMs
                grad_x = g2 @ weight if grad_x is None else grad_x.addmm_(g2, weight)
            grad_members += [None, g2.sum(0) if need_members[2 * i + 1] else None]
        grad_M = grad_h.t() @ c if need_M else None
        if need_x:
            compress_adjoint_(grad_x, grad_h @ M_cat, r_hat, truncation)
            grad_x = grad_x.view(ctx.x_shape)
        return (grad_x, grad_M, None, None, *grad_members)


def mora_group(x: torch.Tensor, layers: Sequence) -> tuple[torch.Tensor, ...]:
    """Every layer's output on x (MoraLinear layers of one operator and r̂, truncation or interleaved sharing)."""
    first = layers[0]
    M_cat = first.mora_M if len(layers) == 1 else torch.cat([layer.mora_M for layer in layers])
    members = [t for layer in layers for t in (layer.base_layer.weight, layer.base_layer.bias)]
    return MoraGroupFunction.apply(x, M_cat, first.r_hat, first.mora_type == "truncation", *members)
