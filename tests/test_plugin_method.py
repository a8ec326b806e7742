"""A method from outside the suite (tests/fixtures/plugin: its math and hooks in one file, its method YAML beside it)
runs through training, export and bench.perf's rows with no file of the repository edited: registration, the
LORABENCH_PLUGINS variable and a Hydra search path are all it takes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from methods import METHODS, PLUGINS_ENV
from methods.registry import load_plugins
from tests.bench_helpers import FAST, cli_env
from tests.conftest import REPO

PLUGIN_DIR = REPO / "tests" / "fixtures" / "plugin"
PLUGIN = "sketch_plugin"


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def plugin_env(runs_dir) -> dict[str, str]:
    return {**cli_env(runs_dir), PLUGINS_ENV: PLUGIN, "PYTHONPATH": str(PLUGIN_DIR)}


def run(module: str, args: list[str], runs_dir) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=plugin_env(runs_dir),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def plugin_registered(monkeypatch):
    """The plugin loaded into this process, and gone again afterwards (other tests see the built-ins only)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    before = dict(METHODS)
    assert "sketch" not in METHODS
    load_plugins(PLUGIN)
    yield METHODS["sketch"]
    METHODS.clear()
    METHODS.update(before)
    sys.modules.pop(PLUGIN, None)


def test_a_plugin_method_trains_and_exports_with_no_repository_file_touched(tmp_path):
    status = git_status()
    run("bench.train", ["method=sketch", f"hydra.searchpath=[file://{PLUGIN_DIR / 'conf'}]", "export=true", *FAST],
        tmp_path)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("sketch-")]
    trained = load_file(run_dir / "export" / "peft" / "adapter_model.safetensors")
    saved = torch.load(run_dir / "final_adapter.pt", weights_only=True)["state"]
    assert any("sketch_A" in key for key in saved)  # the frozen sketch came along (its final_state_keys)

    run("bench.export", [str(run_dir)], tmp_path)  # rebuilt by registry name from the record, in a fresh process
    reexported = load_file(run_dir / "export" / "peft" / "adapter_model.safetensors")
    assert trained.keys() == reexported.keys() and len(trained) > 0
    assert all(torch.equal(trained[key], reexported[key]) for key in trained)
    assert (run_dir / "export" / "merged").is_dir()
    assert git_status() == status


def test_a_plugin_method_gets_its_perf_rows_and_arithmetic(plugin_registered, tmp_path):
    from omegaconf import OmegaConf

    from bench.perf.bench import FLOOR_ROW, PEFT_ROW, REFERENCE_METHOD, Bench, measure, rows_for
    from bench.perf.config import QUICK_RUN, parse_args
    from bench.perf.model import predicted_ratio
    from bench.perf.summary import summarise

    rows = rows_for(2)
    (sketch,) = [row for row in rows if row.method == "sketch"]
    assert sketch.name == "sketch" and rows[-1] is sketch  # after the built-ins, in registry order
    cfg = OmegaConf.merge(parse_args(["quick=true", f"out_dir={tmp_path}"]), QUICK_RUN, {"reps": 2, "warmup": 0})
    bench = Bench(cfg, 2, torch.device("cpu"), torch.float32)
    timed = [row for row in rows if row.name in (FLOOR_ROW, REFERENCE_METHOD, PEFT_ROW)] + [sketch]
    measure(bench, timed)
    arithmetic = plugin_registered(r=2, alpha=4, target_modules=bench.targets)
    assert sketch.predicted_vs_floor == predicted_ratio(arithmetic, bench.shape, bench.base, cfg.seq_len,
                                                        cfg.batch * cfg.seq_len) > 1.0
    entry = next(e for e in summarise(timed, cfg) if e["row"] == "sketch")
    assert entry["arithmetic_vs_floor"] == sketch.predicted_vs_floor and entry["trainable_params"] > 0
