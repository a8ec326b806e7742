"""The label hooks (AdapterMethod.label, table_label, rank_label, setting_label) give what bench.report's name
switches give, for every committed run record: the report can ask the method instead of knowing its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import METHOD_LABELS, method_label, rank_label, setting_of
from methods import METHODS
from tests.conftest import REPO

# SaLoRA Table 3's ablation rows: the SaLoRA paper's own row names (paper data), not the method's label.
PAPER_ROW_LABELS = {"SaLoRA_lambda=0": "salora", "SaLoRA_beta=0": "salora"}


def committed_configs() -> list[dict]:
    paths = sorted(REPO.glob("results/*/records/*.json"))
    configs = [json.loads(Path(path).read_text())["result"]["config"] for path in paths]
    assert len(configs) > 500  # every committed record has its run config
    return configs


CONFIGS = committed_configs()


def hook_class(cfg: dict):
    return METHODS[cfg["method"]["name"]]


def test_every_method_s_label_is_the_report_s():
    assert {name: cls.label for name, cls in METHODS.items()} == METHOD_LABELS


def test_table_label_is_the_report_s_method_label_on_every_record():
    for cfg in CONFIGS:
        want, got = method_label(cfg), hook_class(cfg).table_label(cfg["method"])
        if want in PAPER_ROW_LABELS:
            assert cfg["method"]["name"] == PAPER_ROW_LABELS[want] and got == METHOD_LABELS["salora"]
        else:
            assert got == want, cfg["method"]
    assert any(hook_class(cfg).table_label(cfg["method"]) == "LoRA" for cfg in CONFIGS if cfg["method"]["name"] == "cola")


def test_rank_label_is_the_report_s_on_every_record():
    for cfg in CONFIGS:
        assert hook_class(cfg).rank_label(cfg["method"]) == rank_label(cfg), cfg["method"]
    labels = {hook_class(cfg).rank_label(cfg["method"]) for cfg in CONFIGS}
    assert {"–", "8->2"} <= labels  # the rankless methods and COLA's step-down were covered


def test_setting_label_is_the_report_s_on_every_record():
    for cfg in CONFIGS:
        assert hook_class(cfg).setting_label(cfg["method"]) == setting_of(cfg), cfg["method"]
    labels = {hook_class(cfg).setting_label(cfg["method"]) for cfg in CONFIGS}
    assert {"", "chain length 1", "operator=rotation"} <= labels


@pytest.mark.parametrize("method_cfg,labels", [
    ({"name": "cola", "r": 8, "knots": [0.3, 0.6], "ranks": [8, 4, 2]}, ("COLA", "8", "chain length 3")),
    ({"name": "salora", "r": 8, "beta": 0.0}, ("SaLoRA", "8", "")),
    ({"name": "remora", "r": 4, "mora_type": "sharing"}, ("ReMoRA", "4", "operator=sharing")),
    ({"name": "prompt", "r": 8}, ("Prompt", "–", "")),
])
def test_hooks_on_configs_no_record_holds(method_cfg, labels):
    cls = METHODS[method_cfg["name"]]
    assert (cls.table_label(method_cfg), cls.rank_label(method_cfg), cls.setting_label(method_cfg)) == labels
    cfg = {"method": method_cfg}
    assert (rank_label(cfg), setting_of(cfg)) == labels[1:]
