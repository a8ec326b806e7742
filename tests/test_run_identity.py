"""A run dir's name is its identity: configs that train differently never share one (a finished run is skipped)."""

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
