"""What a run records about itself: its dir name is its identity, its ΔW spectrum is the whole learned change."""

from __future__ import annotations

import pytest

from tests.bench_helpers import compose_cfg


def test_salora_gate_settings_read_through_oc_select_change_the_run_id(tmp_path):
    from bench.resolvers import run_id

    base = compose_cfg(["method=salora", "scale=small", "experiment=salora_density_small"], tmp_path)
    other = compose_cfg(["method=salora", "scale=small", "experiment=salora_density_small",
                         "salora_gates.lr_constraint=0.01"], tmp_path)
    assert base.method.lr_constraint == 0.05 and other.method.lr_constraint == 0.01
    assert run_id(_root_=base) != run_id(_root_=other)
    same = compose_cfg(["method=salora", "scale=small", "experiment=salora_density_small"], tmp_path)
    assert run_id(_root_=base) == run_id(_root_=same)


@pytest.mark.parametrize("name", ["relora", "remora", "cola", "lora"])
def test_the_singular_values_of_a_restarted_run_count_the_merged_updates(name):
    """Fig. 5's ΔW is the whole change of the weight (restarts merge into W), counted per module without a copy of W:
    the live adapter plus the retired links equal W_now − W_start, the oracle."""
    import torch
    from torch import nn

    from bench.run.steps import delta_singular_values
    from methods import build_method

    torch.manual_seed(0)
    extra = {"restart_every": 2} if name in ("relora", "remora") else {"knots": [0.5]} if name == "cola" else {}
    method = build_method(name, r=2, alpha=4, target_modules=["fc"], **extra)
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(24, 24))
    model = method.apply(model)
    start = model.fc.base_layer.weight.detach().clone()
    method.on_train_begin(model, total_steps=4)
    for step in range(1, 5):
        for p in method.trainable_parameters(model):
            p.data.add_(0.3 * torch.randn_like(p))
        if hasattr(method, "knot_due") and method.knot_due(step):
            method.tie_knot(model)
    whole = model.fc.base_layer.weight.detach() + model.fc.delta_weight() - start
    expected = int((torch.linalg.svdvals(whole) > 0.1).sum())
    assert delta_singular_values(method, model) == {"fc": expected}
    if name != "lora":
        assert expected > (2 if name != "remora" else 0)   # more than one link's rank: the merged links count


def test_the_result_says_where_the_wall_time_went(tmp_path):
    from tests.bench_helpers import FAST, run_inprocess

    result, _ = run_inprocess([*FAST, "task.score_every=8"], tmp_path)
    assert result["trainer_flos"] > 0 and result["train_flops"] > 0   # HF's count beside the suite's (COLA Table 4)
    parts = result["time_s"]
    assert parts["training"] > 0 and parts["periodic_scoring"] > 0 and parts["final_eval"] > 0 and parts["other"] > 0
    total = parts["training"] + parts["periodic_scoring"] + parts["final_eval"] + parts["other"]
    assert abs(total - result["wall_s"]) < 0.05
    assert abs(parts["training_share"] - parts["training"] / result["wall_s"]) < 1e-3
