"""COLA, ReLoRA, ReMoRA: knots fold ΔW into the frozen weight, start a fresh link and reset only its optimizer state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from methods import build_method, swap_optimizer_params
from tests.conftest import LLAMA_TARGETS, model_output, tiny_llama


def mlp() -> nn.Module:
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(20, 12))
    model.add_module("norm", nn.LayerNorm(12))
    return model


def train_steps(model, optimizer, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        loss = model(torch.randn(6, 20, generator=g)).pow(2).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_cola_knot_folds_links_and_resets_only_the_new_link_state():
    torch.manual_seed(0)
    cola = build_method("cola", r=4, alpha=8, target_modules=["fc"], knots=[0.3, 0.6], ranks=[4, 3, 2],
                        modules_to_save=["norm"])
    model = cola.apply(mlp())
    W0 = model.fc.base_layer.weight.detach().clone()
    cola.on_train_begin(model, total_steps=10)
    assert cola.knot_steps == [3, 6] and cola.knot_due(3) and not cola.knot_due(4)

    optimizer = torch.optim.AdamW(cola.trainable_parameters(model), lr=1e-2)
    links = []
    for link in range(2):
        train_steps(model, optimizer, 3, seed=link)
        layer = model.fc
        links.append((layer.lora_B.detach().clone(), layer.lora_A.detach().clone(), layer.scaling))
        norm_state = {k: v.clone() for k, v in optimizer.state[model.norm.weight].items()}
        swaps = cola.tie_knot(model)
        swap_optimizer_params(optimizer, swaps)

        expected = W0 + sum(s * B @ A for B, A, s in links)
        assert torch.allclose(model.fc.base_layer.weight, expected, atol=1e-6)
        assert torch.count_nonzero(model.fc.lora_B) == 0
        assert model.fc.lora_A.shape == (cola.ranks[link + 1], 20) and model.fc.lora_B.shape == (12, cola.ranks[link + 1])
        assert model.fc.scaling == pytest.approx(8 / cola.ranks[link + 1])
        fresh = {id(model.fc.lora_A), id(model.fc.lora_B)}
        assert all(id(p) in {id(q) for g in optimizer.param_groups for q in g["params"]} for p in (model.fc.lora_A, model.fc.lora_B))
        assert not any(id(p) in fresh for p in optimizer.state)  # the new link starts cold
        assert all(torch.equal(norm_state[k], v) for k, v in optimizer.state[model.norm.weight].items())  # others keep theirs
        assert cola.link_index == link + 1

    train_steps(model, optimizer, 2, seed=9)  # the last link trains from its fresh state
    B, A, s = model.fc.lora_B.detach(), model.fc.lora_A.detach(), model.fc.scaling
    x = torch.randn(5, 20)
    chain_sum = W0 + sum(sb * Bb @ Ab for Bb, Ab, sb in links) + s * B @ A
    merged = cola.merge(model)
    assert torch.allclose(merged.fc.weight, chain_sum, atol=1e-5)
    assert torch.allclose(merged.fc(x), x @ chain_sum.T + merged.fc.bias, atol=1e-5)


def test_cola_knot_keeps_the_function_on_a_llama():
    torch.manual_seed(0)
    cola = build_method("cola", r=4, target_modules=LLAMA_TARGETS, knots=[0.5], link_init="gaussian")
    model = cola.apply(tiny_llama()).eval()
    with torch.no_grad():
        for _, layer in cola.adapted_layers(model):
            layer.lora_B.normal_(std=0.05)
    ids = torch.randint(0, 96, (2, 8))
    before = model_output(model, ids)
    cola.tie_knot(model)
    assert (model_output(model, ids) - before).abs().max() <= 1e-4


def test_relora_restarts_every_n_steps():
    relora = build_method("relora", r=2, target_modules=["fc"], restart_every=4)
    model = relora.apply(mlp())
    relora.on_train_begin(model, total_steps=13)
    assert relora.knot_steps == [4, 8, 12]
    with torch.no_grad():
        model.fc.lora_B.normal_()
    expected = model.fc.base_layer.weight + model.fc.delta_weight()
    swaps = relora.tie_knot(model)
    assert len(swaps) == 2 and torch.count_nonzero(model.fc.lora_B) == 0
    assert torch.allclose(model.fc.base_layer.weight, expected, atol=1e-6)


def test_remora_zeroes_M_and_alternates_the_sharing_grouping():
    remora = build_method("remora", r=2, target_modules=["fc"], restart_every=3, mora_type="sharing")
    model = remora.apply(mlp())
    layer = model.fc
    groupings = []
    for _ in range(3):
        with torch.no_grad():
            layer.mora_M.normal_()
        expected = layer.base_layer.weight + layer.delta_weight()
        groupings.append(layer.sharing_grouping)
        (old, new), = remora.tie_knot(model)
        assert new is layer.mora_M and torch.count_nonzero(layer.mora_M) == 0
        assert torch.allclose(layer.base_layer.weight, expected, atol=1e-6)
    assert groupings == ["interleaved", "contiguous", "interleaved"]


def test_method_state_round_trips_for_resume():
    cola = build_method("cola", r=4, target_modules=["fc"], knots=[0.5])
    model = cola.apply(mlp())
    cola.on_train_begin(model, 8)
    cola.tie_knot(model)
    other = build_method("cola", r=4, target_modules=["fc"], knots=[0.5])
    other.load_state_dict(cola.state_dict())
    assert other.link_index == 1 and other.knot_steps == [4]


def test_relora_jagged_schedule_drops_to_zero_at_each_restart_and_rewarms_linearly():
    relora = build_method("relora", r=2, target_modules=["fc"], restart_every=10, restart_warmup=4)
    factors = [relora.rewarm_factor(step) for step in range(0, 26)]
    assert factors[:10] == [1.0] * 10                  # before the first restart: the base schedule alone
    assert factors[10:15] == [0.0, 0.25, 0.5, 0.75, 1.0] and factors[15:20] == [1.0] * 5
    assert factors[20:25] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert build_method("relora", r=2, target_modules=["fc"], restart_every=10).rewarm_factor(10) == 1.0   # off


def test_a_restart_warmup_not_shorter_than_the_period_is_one_clear_error():
    with pytest.raises(ValueError, match="restart_warmup.*restart_every=10"):
        build_method("remora", r=2, target_modules=["fc"], restart_every=10, restart_warmup=10)


def test_the_trainer_multiplies_its_schedule_by_the_jagged_factor(tmp_path):
    import json

    from tests.bench_helpers import FAST, run_inprocess

    overrides = [*FAST, "method=relora", "+restarts.every=8", "+restarts.warmup=4", "trainer.logging_steps=1",
                 "trainer.lr_scheduler_type=constant", "trainer.warmup_steps=0"]
    _, run_dir = run_inprocess(overrides, tmp_path)
    lr = {row["step"]: row["lr"] for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
          if "lr" in row}
    base = 3e-3   # FAST's constant rate; the knot is tied after step 8, so step 9 runs at zero
    assert [lr[s] / base for s in range(5, 15)] == pytest.approx([1, 1, 1, 1, 0, 0.25, 0.5, 0.75, 1, 1])
