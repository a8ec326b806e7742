"""The fused LoRA node (methods/fast/lora.py) against the layer's equation written out with plain tensor ops:
y = x·Wᵀ + b + ((dropout(x)·Aᵀ) ⊙ s·g)·Bᵀ — values and every gradient, with and without dropout, gate, bias,
a frozen A (AsyLoRA) and an input that needs no gradient (the first layer)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods.fast.lora import NARROW_COLUMNS
from methods.lora import LoraLinear

CASES = list(itertools.product([0.0, 0.2], [False, True], [False, True], [True, False], [True, False]))


@pytest.mark.parametrize("r", [3, NARROW_COLUMNS])  # the node's transposed products below NARROW_COLUMNS, plain from it
@pytest.mark.parametrize("dropout,with_gate,with_bias,train_A,input_grad", CASES)
def test_fused_layer_equals_the_equation(dropout, with_gate, with_bias, train_A, input_grad, r):
    torch.manual_seed(0)
    base = nn.Linear(12, 10, bias=with_bias)
    layer = LoraLinear(base, r=r, scaling=1.7, dropout=dropout).train()
    with torch.no_grad():
        layer.lora_B.normal_()
    layer.lora_A.requires_grad_(train_A)
    gate = torch.rand(r, requires_grad=True) if with_gate else None
    if with_gate:
        layer.gate = lambda: gate
    x = torch.randn(2, 5, 12, requires_grad=input_grad)

    torch.manual_seed(1)
    fused = layer(x)
    torch.manual_seed(1)  # the same dropout mask
    hidden = F.dropout(x, dropout, training=True) @ layer.lora_A.T if dropout else x @ layer.lora_A.T
    hidden = hidden * (gate * 1.7 if with_gate else 1.7)
    dense = x @ base.weight.T + (base.bias if with_bias else 0) + hidden @ layer.lora_B.T
    assert torch.allclose(fused, dense, atol=1e-5)

    upstream = torch.randn_like(dense)
    leaves = [t for t in (x, layer.lora_A, layer.lora_B, gate) if t is not None and t.requires_grad]
    got = torch.autograd.grad(fused, leaves, upstream)
    want = torch.autograd.grad(dense, leaves, upstream)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-5)


def test_a_trainable_bias_gets_its_gradient():
    torch.manual_seed(0)
    layer = LoraLinear(nn.Linear(6, 4), r=2, scaling=1.0, dropout=0.0)
    layer.base_layer.bias.requires_grad_(True)
    x = torch.randn(3, 6)
    (grad,) = torch.autograd.grad(layer(x).sum(), [layer.base_layer.bias])
    assert torch.equal(grad, torch.full((4,), 3.0))


@pytest.mark.parametrize("with_gate", [False, True])
def test_mixed_dtypes_take_the_composed_path_and_agree(with_gate):
    torch.manual_seed(0)
    layer = LoraLinear(nn.Linear(8, 8).to(torch.bfloat16), r=2, scaling=1.0, dropout=0.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    gate = torch.tensor([0.3, 1.0]) if with_gate else torch.ones(2)
    if with_gate:
        layer.gate = lambda: gate
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    out = layer(x)
    assert out.dtype == torch.bfloat16
    dense = layer.base_layer(x).float() + x.float() @ (layer.lora_B @ torch.diag(gate) @ layer.lora_A).T
    assert torch.allclose(out.float(), dense, atol=5e-2)
