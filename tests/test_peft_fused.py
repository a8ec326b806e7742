"""peft's DoRA and AdaLoRA layers with the fused forward (methods/fast/peft.py) against independent oracles,
values and every gradient (input, A/P, B/Q, magnitude / singular values, a trained bias):

* DoRA: Eq. 5 of Liu et al. written out densely, y = (m / ‖W + s·BA‖) ⊙ x·(W + s·BA)ᵀ + b with the norm detached
  (their Sec. 4.3), and peft's own forward on the same layer;
* AdaLoRA: y = x·Wᵀ + b + dropout(x)·(P ⊙ Λ)ᵀ·Qᵀ·s / r written out, with some singular values pruned to zero, and
  peft's own forward on the same layer, dropout included (same mask).

Where the node does not apply (DoRA's dropout while training, mixed dtypes, a merged layer), peft's forward runs."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from peft.tuners.adalora.layer import SVDLinear
from peft.tuners.lora.layer import Linear as PeftLoraLinear

from methods import build_method
from methods.fast.lora import NARROW_COLUMNS
from methods.fast.peft import FusedDoraLinear, FusedSVDLinear
from tests.conftest import ARCHS
from tests.test_baselines import perturb

CASES = [("llama", "none"), ("opt", "none"), ("opt", "lora_only"), ("roberta", "lora_only")]
PEFT_FORWARD = {FusedDoraLinear: PeftLoraLinear.forward, FusedSVDLinear: SVDLinear.forward}


def adapted_layers(method: str, arch: str, r: int, bias: str = "none", dropout: float = 0.0):
    build_model, targets = ARCHS[arch]
    torch.manual_seed(0)
    model = build_method(method, r=r, alpha=2 * r, dropout=dropout, target_modules=targets, bias=bias,
                         ).apply(build_model())
    perturb(model, seed=2, only="lora_")  # B leaves zero and m leaves ‖W‖, so every term of the node is exercised
    layers = [m for m in model.modules() if type(m) in PEFT_FORWARD]
    assert len(layers) == len([m for m in model.modules() if isinstance(m, (PeftLoraLinear, SVDLinear))]) > 0
    with torch.no_grad():
        for layer in layers:
            if layer.get_base_layer().bias is not None:  # HF initialises biases to zero, which would hide their terms
                layer.get_base_layer().bias.normal_()
            if method == "adalora":  # as the allocator leaves them: some components pruned
                layer.lora_E["default"][::3] = 0.0
    return model, layers


def trainables(layer, x):
    names = ("lora_A", "lora_B", "lora_magnitude_vector") if isinstance(layer, FusedDoraLinear) else ("lora_A", "lora_B", "lora_E")
    params = [getattr(layer, name)["default"] for name in names]
    params = [p.weight if isinstance(p, torch.nn.Module) else p for p in params]
    bias = layer.get_base_layer().bias
    return [x, *params] + ([bias] if bias is not None and bias.requires_grad else [])


def dora_equation(layer, x):
    W, b = layer.get_base_layer().weight, layer.get_base_layer().bias
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    m = layer.lora_magnitude_vector["default"].weight
    V = W + layer.scaling["default"] * B @ A
    y = (m / V.detach().norm(dim=1)) * (x @ V.T)
    return y + b if b is not None else y


def adalora_equation(layer, x, x_dropped):
    W, b = layer.get_base_layer().weight, layer.get_base_layer().bias
    P, Q, E = layer.lora_A["default"], layer.lora_B["default"], layer.lora_E["default"]
    y = x @ W.T + x_dropped @ (P * E).T @ Q.T * (layer.scaling["default"] / P.shape[0])
    return y + b if b is not None else y


def assert_same(got_out, want_out, got_grads, want_grads, atol=1e-5):
    assert torch.allclose(got_out, want_out, atol=atol), float((got_out - want_out).abs().max())
    for got, want in zip(got_grads, want_grads):
        assert torch.allclose(got, want, atol=atol), float((got - want).abs().max())


def check_against(layer, x, fused, reference, upstream):
    got = torch.autograd.grad(fused, trainables(layer, x), upstream, retain_graph=True)
    assert_same(fused, reference, got, torch.autograd.grad(reference, trainables(layer, x), upstream))


@pytest.mark.parametrize("r", [4, NARROW_COLUMNS])  # the transposed products below NARROW_COLUMNS, plain from it
@pytest.mark.parametrize("arch,bias", CASES)
def test_fused_dora_equals_equation_5_and_peft_s_forward(arch, bias, r):
    _, layers = adapted_layers("dora", arch, r, bias)
    for layer in layers:
        layer.train()
        x = torch.randn(2, 5, layer.in_features, requires_grad=True)
        upstream = torch.randn(2, 5, layer.out_features)
        fused = layer(x)
        check_against(layer, x, fused, dora_equation(layer, x), upstream)
        check_against(layer, x, fused, PeftLoraLinear.forward(layer, x), upstream)


@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("r", [4, NARROW_COLUMNS])
@pytest.mark.parametrize("arch,bias", CASES)
def test_fused_adalora_equals_its_equation_and_peft_s_forward(arch, bias, r, dropout):
    _, layers = adapted_layers("adalora", arch, r, bias, dropout)
    for layer in layers:
        layer.train()
        x = torch.randn(2, 5, layer.in_features, requires_grad=True)
        upstream = torch.randn(2, 5, layer.out_features)
        torch.manual_seed(7)
        fused = layer(x)
        torch.manual_seed(7)  # the same dropout mask for both oracles
        check_against(layer, x, fused, adalora_equation(layer, x, F.dropout(x, dropout, training=True)), upstream)
        torch.manual_seed(7)
        check_against(layer, x, fused, SVDLinear.forward(layer, x), upstream)


def test_dora_dropout_while_training_keeps_peft_s_forward():
    """peft applies the magnitude to W·dropout(x) there: a different expression, which stays peft's."""
    _, layers = adapted_layers("dora", "llama", 4, dropout=0.3)
    layer = layers[0].train()
    x = torch.randn(3, 6, layer.in_features)
    torch.manual_seed(5)
    fused = layer(x)
    torch.manual_seed(5)
    assert torch.equal(fused, PeftLoraLinear.forward(layer, x))
    layer.eval()  # no dropout in eval: the node again, equal to the equation
    with torch.no_grad():
        assert torch.allclose(layer(x), dora_equation(layer, x), atol=1e-5)


@pytest.mark.parametrize("method", ["dora", "adalora"])
def test_mixed_dtypes_and_merged_layers_take_peft_s_path(method):
    _, layers = adapted_layers(method, "llama", 4)
    layer = layers[0].eval()
    x = torch.randn(4, layer.in_features)
    with torch.no_grad():
        before = layer(x)
        layer.merge()
        assert torch.allclose(layer(x), before, atol=1e-5)  # peft's merged forward: the base layer alone
        layer.unmerge()
        layer.get_base_layer().to(torch.bfloat16)
        out = layer(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), before, atol=5e-2)


@pytest.mark.parametrize("method", ["dora", "adalora"])
def test_a_model_with_fused_layers_pickles_and_reloads(method):
    model, _ = adapted_layers(method, "llama", 4)
    ids = torch.randint(0, 30, (2, 7))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    reloaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reloaded(input_ids=ids).logits)


def test_without_peft_s_lora_variants_dora_keeps_peft_s_layer(monkeypatch):
    """A peft release before its LoRA variants has no DoraLinearVariant: DoRA's layers stay peft's, with peft's forward."""
    import methods.fast.peft

    monkeypatch.setattr(methods.fast.peft, "DoraLinearVariant", None)
    build_model, targets = ARCHS["llama"]
    model = build_method("dora", r=4, target_modules=targets).apply(build_model())
    assert not [m for m in model.modules() if type(m) is FusedDoraLinear]
    assert [m for m in model.modules() if type(m) is PeftLoraLinear]


def test_adalora_model_skips_peft_s_zero_weight_regulariser_bitwise():
    """peft's AdaLoraModel adds 0 × its orthogonal regulariser to the loss; skipping it changes no bit of the loss or
    of any gradient, and a nonzero weight still adds it (peft's forward)."""
    from peft.tuners.adalora.model import AdaLoraModel

    from methods.fast.peft import AdaLoraModelWithoutZeroTerm

    model, _ = adapted_layers("adalora", "llama", 4)
    assert type(model.base_model) is AdaLoraModelWithoutZeroTerm
    ids = torch.randint(0, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(3))
    trained = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(forward):
        loss = forward(model.base_model, input_ids=ids, labels=ids).loss
        return loss, torch.autograd.grad(loss, trained)

    ours, peft_s = loss_and_grads(AdaLoraModelWithoutZeroTerm.forward), loss_and_grads(AdaLoraModel.forward)
    assert torch.equal(ours[0], peft_s[0])
    assert all(torch.equal(a, b) for a, b in zip(ours[1], peft_s[1]))
    model.peft_config["default"].orth_reg_weight = 0.5
    weighted = model.base_model(input_ids=ids, labels=ids).loss
    assert torch.equal(weighted, AdaLoraModel.forward(model.base_model, input_ids=ids, labels=ids).loss)
    assert weighted > ours[0]
