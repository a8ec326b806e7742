"""What a run records about itself: its dir name is its identity, its ΔW spectrum is the whole learned change."""

from __future__ import annotations

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


def test_the_singular_values_of_a_restarted_run_count_the_merged_updates(tmp_path):
    """ReLoRA merges its adapter into W at each restart: Fig. 5's ΔW is the whole change, not the last segment."""
    import torch

    from bench.run import delta_singular_values

    torch.manual_seed(0)
    start = {"m": torch.randn(16, 16)}
    merged = torch.randn(16, 4) @ torch.randn(4, 16)   # rank 4, folded into W by a restart
    live = torch.randn(16, 4) @ torch.randn(4, 16)     # rank 4, the adapter after the last restart
    now = {"m": start["m"] + merged + live}
    assert delta_singular_values(start, now, threshold=1e-3) == {"m": 8}
    assert delta_singular_values(None, now) is None


def test_the_result_says_where_the_wall_time_went(tmp_path):
    from tests.bench_helpers import FAST, run_inprocess

    result, _ = run_inprocess([*FAST, "task.score_every=8"], tmp_path)
    parts = result["time_s"]
    assert parts["training"] > 0 and parts["periodic_scoring"] > 0 and parts["final_eval"] > 0 and parts["other"] > 0
    total = parts["training"] + parts["periodic_scoring"] + parts["final_eval"] + parts["other"]
    assert abs(total - result["wall_s"]) < 0.05
    assert abs(parts["training_share"] - parts["training"] / result["wall_s"]) < 1e-3
