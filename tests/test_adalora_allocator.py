"""The flat AdaLoRA rank allocator (methods/fast/adalora_allocator.py) against peft's own RankAllocator: the same
sensitivity averages, thresholds, masks and rank patterns, bitwise, at every step of a schedule that warms up,
prunes, fixes the final pattern and keeps masking it; and after a resume from a checkpoint mid-pruning."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import AdaLoraConfig, get_peft_model
from peft.tuners.adalora.layer import RankAllocator

from methods import build_method
from methods.fast.adalora_allocator import FlatRankAllocator
from methods.fast.peft import install_flat_allocator
from tests.conftest import tiny_llama

TOTAL = 14


def _config(delta_t: int) -> AdaLoraConfig:
    # tinit 3, pruning until step TOTAL - tfinal = 9 (the final mask), masking with the fixed pattern after it
    return AdaLoraConfig(task_type="CAUSAL_LM", init_r=6, target_r=3, lora_alpha=12, lora_dropout=0.0,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                         tinit=3, tfinal=5, deltaT=delta_t, total_step=TOTAL)


def _pair(delta_t: int):
    torch.manual_seed(0)
    base = tiny_llama()
    torch.manual_seed(1)
    reference = get_peft_model(copy.deepcopy(base), _config(delta_t))
    torch.manual_seed(1)
    flat = get_peft_model(copy.deepcopy(base), _config(delta_t))
    install_flat_allocator(flat)
    assert type(reference.base_model.rankallocator) is RankAllocator
    assert type(flat.base_model.rankallocator) is FlatRankAllocator
    return reference, flat


def _trained(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _fake_step(models, step: int) -> None:
    """The same optimizer-like move and the same gradients in every model (what the allocator reads)."""
    g = torch.Generator().manual_seed(100 + step)
    noise = [(torch.randn(p.shape, generator=g), torch.randn(p.shape, generator=g)) for _, p in _trained(models[0])]
    for model in models:
        with torch.no_grad():
            for (_, p), (move, grad) in zip(_trained(model), noise):
                p.add_(0.05 * move)
                p.grad = grad.clone()


def _assert_same(reference, flat, step: int) -> None:
    ref_alloc, flat_alloc = reference.base_model.rankallocator, flat.base_model.rankallocator
    for key in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        ref_state, flat_state = getattr(ref_alloc, key), getattr(flat_alloc, key)
        assert ref_state.keys() == flat_state.keys(), (step, key)
        for name in ref_state:
            assert torch.equal(ref_state[name], flat_state[name]), (step, key, name)
    for (name, p), (_, q) in zip(_trained(reference), _trained(flat)):
        assert torch.equal(p, q), (step, name)
    assert reference.peft_config["default"].rank_pattern == flat.peft_config["default"].rank_pattern, step


@pytest.mark.parametrize("delta_t", [1, 2])
def test_flat_allocator_is_bitwise_peft_s_at_every_step(delta_t):
    reference, flat = _pair(delta_t)
    masked_any = False
    for step in range(TOTAL):
        _fake_step([reference, flat], step)
        reference.base_model.update_and_allocate(step)
        flat.base_model.update_and_allocate(step)
        _assert_same(reference, flat, step)
        pattern = reference.peft_config["default"].rank_pattern
        masked_any |= bool(pattern) and not all(all(v) for v in pattern.values())
    assert masked_any  # the schedule pruned something: the comparison covered the masks


def test_a_resumed_flat_allocator_continues_as_peft_s():
    """The suite's checkpoint of the allocator (AdaLoRA.state_dict) restored into a fresh model mid-pruning."""
    reference, flat = _pair(1)
    for step in range(6):
        _fake_step([reference, flat], step)
        reference.base_model.update_and_allocate(step)
        flat.base_model.update_and_allocate(step)
    method = build_method("adalora", r=6, alpha=12, target_modules=["q_proj"], total_step=TOTAL)
    saved = method.state_dict(flat)
    weights = {n: p.detach().clone() for n, p in flat.named_parameters()}
    torch.manual_seed(5)
    resumed = get_peft_model(tiny_llama(), _config(1))
    install_flat_allocator(resumed)
    resumed.load_state_dict(weights, strict=False)
    resumed.peft_config["default"].rank_pattern = flat.peft_config["default"].rank_pattern
    method.load_state_dict(saved, resumed)
    for step in range(6, TOTAL):
        _fake_step([reference, resumed], step)
        reference.base_model.update_and_allocate(step)
        resumed.base_model.update_and_allocate(step)
        _assert_same(reference, resumed, step)


def test_the_adalora_method_installs_the_flat_allocator():
    model = build_method("adalora", r=4, alpha=8, target_modules=["q_proj", "v_proj"]).apply(tiny_llama())
    assert type(model.base_model.rankallocator) is FlatRankAllocator
