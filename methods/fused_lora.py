"""LoRA's layer as one autograd node: y = x·Wᵀ + b + ((x̃·Aᵀ) ⊙ s·g)·Bᵀ, with x̃ = dropout(x) and g an optional
per-rank gate (SaLoRA's G).

Composed from modules, the adapter is a dozen autograd nodes per layer (two linears on 3-D inputs, the scale, the
sum with the frozen output, casts) and two extra full-size passes over the output and its gradient. On a small
model those, not the arithmetic, are LoRA's cost. Here the adapter's output is accumulated into the frozen layer's
by the second GEMM (``addmm_``), the scale and gate act on the T×r hidden only, and the backward's input gradient of
the adapter is accumulated into the frozen layer's the same way. The math is unchanged: the tests hold this node
against the modules' composition, values and gradients, and against the dense ΔW.
"""

from __future__ import annotations

import torch


class LoraLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, x_adapter, weight, bias, lora_A, lora_B, gate, scaling: float):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xa2 = x2 if x_adapter is x else x_adapter.reshape(-1, shape[-1])
        hidden = xa2 @ lora_A.t()
        scale = gate * scaling if gate is not None else scaling
        scaled = hidden * scale
        out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
        out.addmm_(scaled, lora_B.t())
        ctx.save_for_backward(xa2, weight, lora_A, lora_B, hidden, scaled, gate)
        ctx.scaling, ctx.shared_input, ctx.x_shape = scaling, x_adapter is x, shape
        return out.view(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad_out):
        xa2, weight, lora_A, lora_B, hidden, scaled, gate = ctx.saved_tensors
        need_x, need_xa, _, need_bias, need_A, need_B, need_gate, _ = ctx.needs_input_grad
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_scaled = g2 @ lora_B                                      # T × r
        grad_B = g2.t() @ scaled if need_B else None
        grad_gate = (grad_scaled * hidden).sum(0) * ctx.scaling if gate is not None and need_gate else None
        grad_hidden = grad_scaled * (gate * ctx.scaling if gate is not None else ctx.scaling)
        grad_A = grad_hidden.t() @ xa2 if need_A else None
        grad_bias = g2.sum(0) if need_bias else None
        grad_x = grad_xa = None
        if ctx.shared_input:
            if need_x:  # the adapter's input gradient accumulated into the frozen layer's by the GEMM
                grad_x = (g2 @ weight).addmm_(grad_hidden, lora_A).view(ctx.x_shape)
        else:
            grad_x = (g2 @ weight).view(ctx.x_shape) if need_x else None
            grad_xa = (grad_hidden @ lora_A).view(ctx.x_shape) if need_xa else None
        return grad_x, grad_xa, None, grad_bias, grad_A, grad_B, grad_gate, None


def fusable(x: torch.Tensor, weight: torch.Tensor, lora_A: torch.Tensor) -> bool:
    """One dtype throughout, a frozen base weight, no autocast: otherwise the modules' composition (it casts)."""
    return (x.dtype == weight.dtype == lora_A.dtype and not weight.requires_grad
            and not torch.is_autocast_enabled(x.device.type))


def lora_linear(x, x_adapter, base_layer, lora_A, lora_B, gate, scaling: float) -> torch.Tensor:
    return LoraLinearFunction.apply(x, x_adapter, base_layer.weight, base_layer.bias, lora_A, lora_B, gate, scaling)
