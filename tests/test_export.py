"""Exports load in the ecosystem and reproduce the suite's logits, checked in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.bench_helpers import FAST, run_inprocess
from tests.conftest import REPO, STORIES

pytestmark = pytest.mark.slow

CASES = {  # config override → has a peft export
    "lora": True, "olora": True, "cola_stepdown": True, "salora": True, "relora": True,
    "mora": True, "mora_truncation": True, "mora_rotation": False, "mora_decoupling": False, "remora": False,
}
EXTRA = {
    "salora": ["method.gate_init=-2.4", "method.t_start=0.0", "method.t_end=0.9", "method.lr_constraint=0.5"],
    "cola_stepdown": ["method.knots=[0.5]", "method.ranks=[4,2]"], "relora": ["method.restart_every=3"], "remora": ["method.restart_every=3"],
}

LOADER = r"""
import json, sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel
out = {}
for run in json.loads(sys.argv[1]):
    probe = load_file(run["probe"])
    ids = probe["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(run["merged"]).eval()
    out[run["name"]] = {"merged": (merged(ids).logits - probe["logits"]).abs().max().item()}
    if run.get("peft"):
        base = AutoModelForCausalLM.from_pretrained(sys.argv[2]).eval()
        model = PeftModel.from_pretrained(base, run["peft"]).eval()
        out[run["name"]]["peft"] = (model(input_ids=ids).logits - probe["logits"]).abs().max().item()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    runs = {}
    for name in CASES:
        tmp = tmp_path_factory.mktemp(name)
        result, run_dir = run_inprocess([f"method={name}", *FAST, "trainer.max_steps=8", "export=true",
                                         "method.r=4", *EXTRA.get(name, [])], tmp)
        runs[name] = (result, run_dir)
    return runs


@pytest.fixture(scope="module")
def fresh_process_diffs(exported):
    payload = [{"name": name, "probe": str(run_dir / "export" / "probe.safetensors"), "merged": result["export"]["merged"],
                "peft": result["export"].get("peft")} for name, (result, run_dir) in exported.items()]
    proc = subprocess.run([sys.executable, "-c", LOADER, json.dumps(payload), str(STORIES)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_reproduces_the_suite_logits_in_a_fresh_process(name, exported, fresh_process_diffs):
    result, run_dir = exported[name]
    assert set(result["export"]) == ({"merged", "peft"} if CASES[name] else {"merged"})
    diffs = fresh_process_diffs[name]
    assert diffs["merged"] <= 1e-4, diffs
    if CASES[name]:
        assert diffs["peft"] <= 1e-4, diffs
        assert (run_dir / "export" / "peft" / "adapter_config.json").exists()
        peft_card = (run_dir / "export" / "peft" / "README.md").read_text()
        assert peft_card.startswith("---\nbase_model: ") and "library_name: peft" in peft_card  # the Hub's header
        adapter_config = json.loads((run_dir / "export" / "peft" / "adapter_config.json").read_text())
        assert adapter_config["lora_dropout"] == result["config"]["method"]["dropout"]  # the training dropout
    card = (run_dir / "export" / "merged" / "README.md").read_text()
    assert result["method"] in card and "stories260k" in card and "metrics" in card


def test_salora_export_ranks_equal_its_kept_ranks(exported):
    result, run_dir = exported["salora"]
    config = json.loads((run_dir / "export" / "peft" / "adapter_config.json").read_text())
    kept = {k: v for k, v in result["metrics"]["rank_pattern"].items() if v > 0}
    assert config["rank_pattern"] == kept
    assert min(result["metrics"]["rank_pattern"].values()) < 4, "no component was pruned: the test shows nothing"


def test_cola_export_rank_is_the_sum_of_its_links(exported):
    result, run_dir = exported["cola_stepdown"]
    config = json.loads((run_dir / "export" / "peft" / "adapter_config.json").read_text())
    assert result["config"]["method"]["ranks"] == [4, 2]
    assert set(config["rank_pattern"].values()) == {4 + 2}


def test_export_cli_reexports_a_finished_run(exported, tmp_path):
    result, run_dir = exported["olora"]
    before = load_file(run_dir / "export" / "probe.safetensors")["logits"]
    proc = subprocess.run([sys.executable, "-m", "bench.export", str(run_dir)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "export (peft)" in proc.stdout and "export (merged)" in proc.stdout
    after = load_file(run_dir / "export" / "probe.safetensors")["logits"]
    assert (after - before).abs().max() <= 1e-5


@pytest.mark.parametrize("method", ["prompt", "adapter_p", "dora"])
def test_baselines_export_in_their_own_format_and_reload_to_the_same_logits(method, tmp_path, capsys):
    """Not mergeable (prompt, bottleneck): one line says so and only the own format is written; peft-backed (DoRA):
    merged and peft's own directory. Each reloads onto a fresh base to the suite's probe logits."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from methods import build_method
    from tests.conftest import STORIES

    result, run_dir = run_inprocess([*FAST, f"method={method}", "export=true"], tmp_path)
    own = run_dir / "export" / method
    assert set(result["export"]) == ({"merged", method} if method == "dora" else {method})
    assert ("is not mergeable; exported in its own format only" in capsys.readouterr().out) == (method != "dora")
    probe = load_file(run_dir / "export" / "probe.safetensors")
    base = AutoModelForCausalLM.from_pretrained(STORIES).eval()
    if method == "adapter_p":
        config = json.loads((own / "adapter_config.json").read_text())
        model = build_method(method, r=8, bottleneck=config["bottleneck"]).apply(base)
        model.load_state_dict(load_file(own / "adapter_model.safetensors"), strict=False)
    else:
        assert json.loads((own / "adapter_config.json").read_text())["base_model_name_or_path"] == str(STORIES)
        model = PeftModel.from_pretrained(base, own).eval()
    with torch.no_grad():
        logits = model(input_ids=probe["input_ids"]).logits[:, -probe["input_ids"].shape[1]:]
    assert (logits - probe["logits"][:, -probe["input_ids"].shape[1]:]).abs().max() <= 1e-4
