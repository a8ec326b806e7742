"""Siblings that read one input (q/k/v, gate/up) share one node (methods/fast/shared_input.py): the model's outputs and
every gradient equal the per-layer nodes', and the merged model's (the dense ΔW), for every LoRA-based method;
siblings that turn out to read different inputs fall back to their own nodes with the same result."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from methods import build_method
from methods.lora import LoraLinear
from methods.fast.shared_input import SharedInputGroup

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CASES = {
    "lora": {},
    "lora_bias": {"bias": "lora_only"},
    "olora": {},
    "asylora": {},
    "salora": {},
    "cola": {},
    "relora": {},
    "mora_sharing": {"mora_type": "sharing"},
    "mora_truncation": {"mora_type": "truncation"},
    "mora_decoupling": {"mora_type": "decoupling"},
    "mora_rotation": {"mora_type": "rotation"},
    "remora_sharing": {"mora_type": "sharing"},
}


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(config).float()


def adapted(case: str, share: bool):
    name = case.split("_")[0]
    method = build_method(name, r=4, alpha=8, target_modules=ALL, **CASES[case])
    if not share:
        method.shared_input_siblings = ()
    torch.manual_seed(1)
    model = method.apply(tiny_llama())
    torch.manual_seed(2)
    with torch.no_grad():
        for _, layer in method.adapted_layers(model):
            (layer.mora_M if hasattr(layer, "mora_M") else layer.lora_B).normal_()
            if hasattr(layer, "gate_log_alpha"):
                layer.gate_log_alpha.normal_()
                layer.gate_mode = "stochastic"  # a trainable per-rank gate in the shared node
    return method, model.train()


def spy_on_groups(monkeypatch, layer_class) -> list[int]:
    """The sizes of the groups whose outputs were computed together, in call order."""
    served, group_forward = [], layer_class.group_forward

    def spy(cls, x, layers):
        outputs = group_forward(x, layers)
        if outputs is not None:
            served.append(len(outputs))
        return outputs

    monkeypatch.setattr(layer_class, "group_forward", classmethod(spy))
    return served


def group_nodes(loss: torch.Tensor) -> int:
    seen, stack, count = set(), [loss.grad_fn], 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        count += type(node).__name__ == "LoraGroupFunctionBackward"
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return count


@pytest.mark.parametrize("case", sorted(CASES))
def test_shared_siblings_equal_per_layer_nodes_values_gradients_and_merge(case, monkeypatch):
    ids = torch.randint(0, 40, (3, 9), generator=torch.Generator().manual_seed(3))
    results = {}
    for share in (True, False):
        method, model = adapted(case, share)
        served = spy_on_groups(monkeypatch, method.layer_class)
        for _, layer in method.adapted_layers(model):
            if hasattr(layer, "resample_gate_noise"):
                torch.manual_seed(4)
                layer.resample_gate_noise()
        out = model(input_ids=ids, labels=ids)
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(out.loss, [p for _, p in trainable])
        results[share] = (out.logits.detach(), dict(zip([n for n, _ in trainable], grads)), group_nodes(out.loss))
        groups = {id(layer.input_group) for _, layer in method.adapted_layers(model) if layer.input_group is not None}
        assert len(groups) == (4 if share else 0)  # q/k/v and gate/up in each of the 2 layers
        assert served == ([3, 2, 3, 2] if share else [])  # and each group computed its layers' outputs together
    (logits, grads, nodes), (logits_alone, grads_alone, nodes_alone) = results[True], results[False]
    if "mora" not in case:
        assert (nodes, nodes_alone) == (2 * 4, 2 * 7)  # 7 layer nodes per block become 4 (qkv, o, gate+up, down)
    assert torch.allclose(logits, logits_alone, atol=1e-5)
    assert grads.keys() == grads_alone.keys()
    for name in grads:
        assert torch.allclose(grads[name], grads_alone[name], atol=1e-5), name

    method, model = adapted(case, True)
    model.eval()
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
        merged = method.merge(copy.deepcopy(model))(input_ids=ids).logits
    assert torch.allclose(unmerged, merged, atol=1e-4)


class CrossAttention(nn.Module):
    """q reads the decoder's states, k and v the encoder's: siblings by name that do not share their input."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(8, 8) for _ in range(3))

    def forward(self, states, memory):
        return self.q_proj(states) + self.k_proj(memory) + self.v_proj(memory)


def test_siblings_that_read_different_inputs_fall_back_to_their_own_nodes():
    torch.manual_seed(0)
    outputs = {}
    for share in (True, False):
        method = build_method("lora", r=2, target_modules=["q_proj", "k_proj", "v_proj"])
        if not share:
            method.shared_input_siblings = ()
        torch.manual_seed(1)
        module = method.apply(CrossAttention())
        with torch.no_grad():
            for _, layer in method.adapted_layers(module):
                layer.lora_B.normal_()
        torch.manual_seed(2)
        states, memory = torch.randn(4, 8), torch.randn(4, 8)
        outputs[share] = [module(states, memory) for _ in range(2)]
        if share:
            assert isinstance(module.q_proj.input_group, SharedInputGroup)
            assert not module.q_proj.input_group.active  # found out on the first call, per-layer nodes since
    for shared, alone in zip(outputs[True], outputs[False]):
        assert torch.allclose(shared, alone, atol=1e-6)


def test_an_input_changed_in_place_between_sibling_calls_is_not_served_stale_outputs():
    method = build_method("lora", r=2, target_modules=["q_proj", "k_proj", "v_proj"])
    torch.manual_seed(1)
    module = method.apply(CrossAttention())
    with torch.no_grad():
        for _, layer in method.adapted_layers(module):
            layer.lora_B.normal_()
    x = torch.randn(4, 8)
    q = module.q_proj(x)
    x.mul_(2.0)
    k = module.k_proj(x)
    assert torch.allclose(k, LoraLinear.adapter_forward(module.k_proj, x) + module.k_proj.base_layer(x), atol=1e-6)
    assert torch.allclose(q, LoraLinear.adapter_forward(module.q_proj, x / 2) + module.q_proj.base_layer(x / 2), atol=1e-6)


def test_gradient_checkpointing_recomputes_through_the_shared_node_and_keeps_sharing():
    """HF's non-reentrant checkpointing runs each block's forward twice: the recomputation shares as the forward did,
    leaves no outputs pending, and the gradients equal the per-layer nodes'."""
    ids = torch.randint(0, 40, (3, 9), generator=torch.Generator().manual_seed(3))
    grads = {}
    for share in (True, False):
        method, model = adapted("lora", share)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
        for _ in range(2):  # a group that lost its sharing in step 1 would fall back in step 2
            out = model(input_ids=ids, labels=ids)
            grads[share] = torch.autograd.grad(out.loss, [p for p in model.parameters() if p.requires_grad])
        groups = {id(layer.input_group): layer.input_group for _, layer in method.adapted_layers(model)
                  if layer.input_group is not None}
        assert len(groups) == (4 if share else 0)
        assert all(group.active and group._pending is None for group in groups.values())
    for shared, alone in zip(grads[True], grads[False]):
        assert torch.allclose(shared, alone, atol=1e-5)
