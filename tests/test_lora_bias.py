"""bias="lora_only" (peft's name; COLA on OPT): the adapted layers' own biases train with the adapter, merge as
they are, and travel in the peft export, whose reload gives the suite's logits."""

from __future__ import annotations

import copy

import pytest
import torch

from methods import build_method
from tests.conftest import OPT_TARGETS, tiny_opt


def _trained(method_name: str):
    torch.manual_seed(0)
    base = tiny_opt().eval()
    method = build_method(method_name, r=4, alpha=8, target_modules=["q_proj", "v_proj"], bias="lora_only")
    model = method.apply(copy.deepcopy(base)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    return base, method, model


@pytest.mark.parametrize("method_name", ["lora", "cola"])
def test_the_adapted_layers_biases_train_and_merge(method_name, input_ids):
    base, method, model = _trained(method_name)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    biases = {n for n in trainable if n.endswith("base_layer.bias")}
    assert biases and all(".q_proj." in n or ".v_proj." in n for n in biases)
    assert len(biases) == 2 * base.config.num_hidden_layers
    assert not any(n.endswith("k_proj.bias") or n.endswith("out_proj.bias") for n in trainable)
    with torch.no_grad():
        adapted = model(input_ids=input_ids).logits
        merged = method.merge(model)(input_ids=input_ids).logits
    assert (merged - adapted).abs().max() <= 1e-4


def test_the_peft_export_carries_the_biases(tmp_path, input_ids):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from bench.export import export_peft

    base, method, model = _trained("lora")
    base.save_pretrained(tmp_path / "base")
    export_peft(method, model, tmp_path / "peft", str(tmp_path / "base"), {"method": "lora", "task_type": "CAUSAL_LM"})
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "peft").eval()
    with torch.no_grad():
        assert (reloaded(input_ids=input_ids).logits - model(input_ids=input_ids).logits).abs().max() <= 1e-4


def test_an_unknown_bias_mode_is_one_line():
    with pytest.raises(ValueError, match=r"^lora: invalid bias='all'; valid: none, lora_only$"):
        build_method("lora", bias="all", target_modules=OPT_TARGETS)
