"""The label hooks (AdapterMethod.label, table_label, rank_label, setting_label) give, for every committed run record,
what the report's name switches gave before the hooks existed (written out below as the oracle), and the report's
labels are the hooks'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import labels as report_labels
from methods import METHODS
from tests.conftest import REPO

# SaLoRA Table 3's ablation rows: the SaLoRA paper's own row names (paper data), not the method's label.
PAPER_ROW_LABELS = {"SaLoRA_lambda=0": "salora", "SaLoRA_beta=0": "salora"}


# The report's switches before the hooks (bench/report.py at 52f507b), the oracle the hooks are held to.
METHOD_LABELS = {"lora": "LoRA", "olora": "OLoRA", "cola": "COLA", "salora": "SaLoRA", "mora": "MoRA",
                 "relora": "ReLoRA", "remora": "ReMoRA", "fft": "FFT", "dora": "DoRA", "loraplus": "LoRA+",
                 "asylora": "AsyLoRA", "adalora": "AdaLoRA", "prefix": "Prefix", "prompt": "Prompt",
                 "adapter_h": "Adapter^H", "adapter_p": "Adapter^P"}
RANKLESS = ("fft", "prefix", "prompt")


def method_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    name = m.get("name", "?")
    if name == "salora" and m.get("use_lagrangian") is False:
        return "SaLoRA_lambda=0"
    if name == "salora" and m.get("beta") == 0:
        return "SaLoRA_beta=0"
    if name == "cola" and not (m.get("knots") or []):
        return "LoRA"
    return METHOD_LABELS.get(name, name)


def rank_label(cfg: dict) -> str:
    m = cfg.get("method", {})
    ranks = m.get("ranks")
    if m.get("name") in RANKLESS:
        return "–"
    if m.get("name") == "cola" and ranks and len(ranks) == 2:
        return f"{ranks[0]}->{ranks[1]}"
    return str(m.get("r"))


def setting_of(cfg: dict) -> str:
    m = cfg.get("method", {})
    if m.get("name") in ("mora", "remora") and "mora_type" in m:
        return f"operator={m['mora_type']}"
    if m.get("name") == "cola":
        return f"chain length {len(m.get('knots') or []) + 1}"
    if m.get("name") == "salora":   # added with the hook (not a switch of 52f507b): b and the gates apart in tables
        parts = [f"b {m['target_density']}"] if "target_density" in m else []
        parts += [f"η_c {m['lr_constraint']}"] if "lr_constraint" in m else []
        parts += [f"window {float(m['t_start']):.0%}-{float(m['t_end']):.0%}"] if "t_start" in m and "t_end" in m else []
        return ", ".join(parts)
    return ""


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
    assert {"", "chain length 1", "operator=rotation", "b 0.5, η_c 0.05, window 10%-90%"} <= labels


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


def test_the_report_reads_its_labels_from_the_hooks():
    for cfg in CONFIGS:
        cls = hook_class(cfg)
        assert report_labels.method_label(cfg) == cls.table_label(cfg["method"])
        assert report_labels.rank_label(cfg) == cls.rank_label(cfg["method"])
        assert report_labels.setting_of(cfg) == cls.setting_label(cfg["method"])
    unknown = {"method": {"name": "not_in_this_checkout", "r": 4}}
    assert (report_labels.method_label(unknown), report_labels.rank_label(unknown)) == ("not_in_this_checkout", "4")


def test_a_figure_line_names_a_rank_only_where_the_method_has_one_and_ranks_sort_as_numbers():
    assert report_labels.run_label({"method": {"name": "fft"}}) == "FFT"
    assert report_labels.run_label({"method": {"name": "lora", "r": 16}}) == "LoRA r16"
    lines = ["LoRA r16", "LoRA r2", "FFT", "LoRA r1", "LoRA r8"]
    assert sorted(lines, key=report_labels.natural_key) == ["FFT", "LoRA r1", "LoRA r2", "LoRA r8", "LoRA r16"]
