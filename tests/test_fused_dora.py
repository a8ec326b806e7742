"""The fused DoRA node (methods/fused_dora.py) against two oracles, values and every gradient: DoRA's Eq. 5 written
out densely (y = (m / ‖W + s·BA‖) ⊙ x·(W + s·BA)ᵀ + b, the norm detached as in the paper's Sec. 4.3), and peft's
own DoRA forward on the same layer. Where the node does not apply (dropout while training, mixed dtypes), peft's
forward runs and gives peft's numbers."""

from __future__ import annotations

import io

import pytest
import torch
from peft.tuners.lora.variants import DoraLinearVariant

from methods import build_method
from methods.fused_dora import fused_dora_variant
from methods.fused_lora import NARROW_COLUMNS
from tests.conftest import ARCHS
from tests.test_baselines import perturb


def dora_layers(arch: str, r: int, bias: str = "none", dropout: float = 0.0):
    build_model, targets = ARCHS[arch]
    torch.manual_seed(0)
    model = build_method("dora", r=r, alpha=2 * r, dropout=dropout, target_modules=targets, bias=bias).apply(build_model())
    perturb(model, seed=2, only="lora_")  # B leaves zero and m leaves ‖W‖, so every term of the node is exercised
    layers = [m for m in model.modules() if getattr(m, "lora_variant", None)]
    with torch.no_grad():  # HF initialises biases to zero, which would hide every bias term
        for layer in layers:
            if layer.get_base_layer().bias is not None:
                layer.get_base_layer().bias.normal_()
    assert layers and all(type(m.lora_variant["default"]) is fused_dora_variant() for m in layers)
    return model, layers


def leaves(layer, x):
    params = [layer.lora_A["default"].weight, layer.lora_B["default"].weight,
              layer.lora_magnitude_vector["default"].weight]
    bias = layer.get_base_layer().bias
    return [x, *params] + ([bias] if bias is not None and bias.requires_grad else [])


def equation(layer, x):
    W, b = layer.get_base_layer().weight, layer.get_base_layer().bias
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    m = layer.lora_magnitude_vector["default"].weight
    V = W + layer.scaling["default"] * B @ A
    y = (m / V.detach().norm(dim=1)) * (x @ V.T)
    return y + b if b is not None else y


def assert_same(got_out, want_out, got_grads, want_grads, atol=1e-5):
    assert torch.allclose(got_out, want_out, atol=atol), float((got_out - want_out).abs().max())
    for got, want in zip(got_grads, want_grads):
        assert torch.allclose(got, want, atol=atol), float((got - want).abs().max())


CASES = [("llama", "none"), ("opt", "none"), ("opt", "lora_only"), ("roberta", "lora_only")]


@pytest.mark.parametrize("r", [4, NARROW_COLUMNS])  # the transposed products below NARROW_COLUMNS, plain from it
@pytest.mark.parametrize("arch,bias", CASES)
def test_fused_dora_equals_equation_5_and_peft_s_forward(arch, bias, r):
    _, layers = dora_layers(arch, r, bias)
    for layer in layers:
        layer.train()
        x = torch.randn(2, 5, layer.in_features, requires_grad=True)
        upstream = torch.randn(2, 5, layer.out_features)
        fused = layer(x)
        got = torch.autograd.grad(fused, leaves(layer, x), upstream)
        dense = equation(layer, x)
        assert_same(fused, dense, got, torch.autograd.grad(dense, leaves(layer, x), upstream))
        layer.lora_variant["default"] = DoraLinearVariant()  # peft's own forward on the same layer
        reference = layer(x)
        assert_same(fused, reference, got, torch.autograd.grad(reference, leaves(layer, x), upstream))


def test_dropout_while_training_keeps_peft_s_forward():
    """peft applies the magnitude to W·dropout(x) there: a different expression, which stays peft's."""
    _, layers = dora_layers("llama", 4, dropout=0.3)
    layer = layers[0].train()
    x = torch.randn(3, 6, layer.in_features)
    torch.manual_seed(5)
    fused = layer(x)
    layer.lora_variant["default"] = DoraLinearVariant()
    torch.manual_seed(5)
    assert torch.equal(fused, layer(x))
    layer.lora_variant["default"] = fused_dora_variant()()
    layer.eval()  # no dropout in eval: the node again, equal to the equation
    with torch.no_grad():
        assert torch.allclose(layer(x), equation(layer, x), atol=1e-5)


def test_mixed_dtypes_take_peft_s_path():
    _, layers = dora_layers("llama", 4)
    layer = layers[0]
    layer.get_base_layer().to(torch.bfloat16)
    x = torch.randn(4, layer.in_features, dtype=torch.bfloat16)
    out = layer(x)
    assert out.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.allclose(out.float(), equation(layer, x.float()), atol=5e-2)


def test_a_model_with_the_fused_variant_pickles_and_reloads():
    model, _ = dora_layers("llama", 4)
    ids = torch.randint(0, 30, (2, 7))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    reloaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reloaded(input_ids=ids).logits)
