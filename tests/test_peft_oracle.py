"""LoRA and OLoRA against peft, the independent reference implementation."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from methods import build_method
from tests.conftest import LLAMA_TARGETS, model_output, tiny_llama

TOL = 1e-5


def logits_agree(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    """Within TOL of the logits' scale: sibling layers that share one node (methods/fast/shared_input.py) sum their
    products in another order than peft's per-module layers, a few float32 ulps on logits of magnitude ~17."""
    return (ours - theirs).abs().max() <= TOL * max(1.0, float(theirs.abs().max()))


def peft_layers(peft_model):
    return {name.removeprefix("base_model.model."): mod for name, mod in peft_model.named_modules() if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {})}


def ours_and_peft(model, method, r, alpha, use_rslora=False, init="default"):
    ours = build_method(method, r=r, alpha=alpha, target_modules=LLAMA_TARGETS, use_rslora=use_rslora)
    ours_model = ours.apply(copy.deepcopy(model)).eval()
    init_lora_weights = {"default": True, "olora": "olora"}[init]
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=LLAMA_TARGETS, lora_dropout=0.0,
                     use_rslora=use_rslora, init_lora_weights=init_lora_weights)
    peft_model = get_peft_model(copy.deepcopy(model), cfg).eval()
    return ours, ours_model, peft_model


@pytest.mark.parametrize("use_rslora", [False, True])
def test_lora_forward_equals_peft_given_same_A_B(input_ids, use_rslora):
    torch.manual_seed(0)
    model = tiny_llama().eval()
    ours, ours_model, peft_model = ours_and_peft(model, "lora", r=4, alpha=16, use_rslora=use_rslora)
    theirs = peft_layers(peft_model)
    layers = dict(ours.adapted_layers(ours_model))
    assert set(layers) == set(theirs)
    with torch.no_grad():
        for name, layer in layers.items():
            layer.lora_A.normal_()
            layer.lora_B.normal_(std=0.1)
            theirs[name].lora_A["default"].weight.copy_(layer.lora_A)
            theirs[name].lora_B["default"].weight.copy_(layer.lora_B)
            assert layer.scaling == pytest.approx(theirs[name].scaling["default"])
    assert logits_agree(model_output(ours_model, input_ids), model_output(peft_model, input_ids))
    # and merging agrees with peft's merge_and_unload
    merged_ours = ours.merge(ours_model)
    merged_theirs = peft_model.merge_and_unload()
    for (k1, v1), (k2, v2) in zip(merged_ours.state_dict().items(), merged_theirs.state_dict().items()):
        assert k1 == k2 and (v1 - v2).abs().max() <= TOL


def test_lora_init_distribution_matches_peft():
    """A kaiming-uniform(a=√5) → bound 1/√in; B zero, as peft."""
    torch.manual_seed(0)
    ours = build_method("lora", r=8, target_modules=["q_proj"])
    model = ours.apply(tiny_llama())
    for _, layer in ours.adapted_layers(model):
        bound = 1 / layer.in_features**0.5
        assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.8 * bound
        assert torch.count_nonzero(layer.lora_B) == 0


def check_olora_equals_peft(model, ids, r, alpha):
    ours, ours_model, peft_model = ours_and_peft(model, "olora", r=r, alpha=alpha, init="olora")
    theirs = peft_layers(peft_model)
    for name, layer in ours.adapted_layers(ours_model):
        ref = theirs[name]
        assert (layer.base_layer.weight - ref.base_layer.weight).abs().max() <= TOL
        assert (layer.lora_A - ref.lora_A["default"].weight).abs().max() <= TOL
        assert (layer.lora_B - ref.lora_B["default"].weight).abs().max() <= TOL
    assert logits_agree(model_output(ours_model, ids), model_output(peft_model, ids))
    # unchanged at step 0 against the untouched model
    assert (model_output(ours_model, ids) - model_output(model, ids)).abs().max() <= 1e-4


def test_olora_equals_peft_on_random_weights(input_ids):
    torch.manual_seed(1)
    check_olora_equals_peft(tiny_llama().eval(), input_ids, r=8, alpha=16)


def test_olora_equals_peft_on_pretrained_stories260k(stories_dir):
    model = AutoModelForCausalLM.from_pretrained(stories_dir, dtype=torch.float32).eval()
    ids = torch.randint(3, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    check_olora_equals_peft(model, ids, r=8, alpha=8)


def test_olora_is_the_thin_qr_written_out():
    """B = Q[:, :r], A = R[:r, :], base = W − s·B·A; B has orthonormal columns, A is upper-triangular."""
    torch.manual_seed(2)
    model = tiny_llama()
    original = {n: m.weight.detach().clone() for n, m in model.named_modules() if n.endswith("down_proj")}
    ours = build_method("olora", r=5, alpha=10, target_modules=["down_proj"])
    ours.apply(model)
    for name, layer in ours.adapted_layers(model):
        W = original[name]
        B, A = layer.lora_B.detach(), layer.lora_A.detach()
        assert torch.allclose(B.T @ B, torch.eye(5), atol=1e-5)
        assert torch.allclose(A, torch.triu(A), atol=0)
        Q, R = torch.linalg.qr(W)
        assert torch.allclose(B, Q[:, :5], atol=1e-6) and torch.allclose(A, R[:5], atol=1e-6)
        assert torch.allclose(layer.base_layer.weight + 2.0 * B @ A, W, atol=1e-5)
