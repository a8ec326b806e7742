"""The training bench end to end: every method trains, knots and gates follow their schedules, sweeps,
kill/resume, skip on re-run, and one-line errors for bad command lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from bench.run.data import Collator, encode
from bench.run.models import load_model, load_tokenizer
from bench.records import RESULT_KEYS
from bench.tasks.uuid_pairs import to_example, uuid_pairs
from bench.run.trainer import AdapterTrainer, MethodHooks
from methods import METHODS, build_method
from tests.bench_helpers import FAST, REPO, cli_env, compose_cfg, finite, run_cli, run_dirs, run_inprocess

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", sorted(METHODS))
def test_tiny_run_per_method_writes_a_complete_result(method, tmp_path):
    result, run_dir = run_inprocess([f"method={method}", *FAST], tmp_path)
    assert set(RESULT_KEYS) <= set(result)
    assert result["status"] == "ok" and result["method"] == method and result["steps"] == 16
    losses = [v for _, v in result["train_loss"]]
    assert len(losses) == 4 and finite(losses)
    assert losses[-1] < losses[0], f"{method}: loss did not decrease: {losses}"
    assert 0.0 <= result["metrics"]["char_acc"] <= 1.0 and finite([result["metrics"]["eval_loss"]])
    full = method == "fft"
    assert (result["trainable_params"] == result["total_params"]) if full else (result["trainable_params"] < result["total_params"])
    assert result["train_flops"] > 0
    assert json.loads((run_dir / "result.json").read_text()) == json.loads(json.dumps(result, default=str))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [4, 8, 12, 16]


def test_cola_knots_happen_at_the_configured_steps(tmp_path):
    result, run_dir = run_inprocess(["method=cola", "method.knots=[0.25,0.75]", "method.ranks=[8,4,2]",
                                     *FAST, "trainer.logging_steps=1"], tmp_path)
    links = {r["step"]: r["link"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "link" in r and "loss" in r}
    assert [links[s] for s in range(1, 17)] == [0] * 3 + [1] * 8 + [2] * 5  # knots after steps 4 and 12
    assert result["config"]["method"]["ranks"] == [8, 4, 2]


class OptimizerProbe(TrainerCallback):
    """Records, right after each step's hooks, which parameters the optimizer holds state for."""

    def __init__(self, method):
        self.method, self.seen = method, {}

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        opt = getattr(optimizer, "optimizer", optimizer)
        layer = next(layer for _, layer in self.method.adapted_layers(model))
        norm = model.model.norm.weight
        self.seen[state.global_step] = {
            "link_has_state": any(p in opt.state for p in (layer.lora_A, layer.lora_B)),
            "link_in_optimizer": all(any(p is q for g in opt.param_groups for q in g["params"]) for p in (layer.lora_A, layer.lora_B)),
            "norm_steps": int(opt.state[norm]["step"]) if norm in opt.state else 0,
        }


def test_knot_resets_optimizer_state_of_the_new_link_only(stories_dir, tmp_path):
    torch.manual_seed(0)
    cfg = compose_cfg(["model=stories260k"], tmp_path).model
    tok = load_tokenizer(cfg)
    model = load_model(cfg, "causal_lm", tokenizer=tok)
    method = build_method("cola", r=4, target_modules=["q_proj", "v_proj"], knots=[0.5], modules_to_save=["norm"])
    model = method.apply(model)
    data = Dataset.from_list(encode("sft", [to_example(r) for r in uuid_pairs(32, 0)], tok, 64))
    probe = OptimizerProbe(method)
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=8, per_device_train_batch_size=4,
                             learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
                             remove_unused_columns=False)
    trainer = AdapterTrainer(model=model, args=args, train_dataset=data, data_collator=Collator(tok.pad_token_id),
                             callbacks=[MethodHooks(method), probe], method=method, task_kind="sft")
    trainer.train()
    assert probe.seen[4] == {"link_has_state": False, "link_in_optimizer": True, "norm_steps": 4}  # the knot
    assert probe.seen[3]["link_has_state"] and probe.seen[5]["link_has_state"]
    assert probe.seen[8]["norm_steps"] == 8  # the other parameters kept their state across the knot


def test_salora_density_moves_toward_b_in_the_window_and_is_frozen_outside(tmp_path):
    # The adapters' own lr is 0 so only the Lagrangian term drives the gates: this isolates the schedule and
    # the gate/λ optimisers as wired into the HF loop (at tiny scale the task gradient can out-pull a young λ).
    result, run_dir = run_inprocess(["method=salora", "method.t_start=0.25", "method.t_end=0.75", "method.gate_init=0.0",
                                     "method.lr_constraint=0.3", "method.target_density=0.3", *FAST,
                                     "trainer.learning_rate=0.0", "trainer.logging_steps=1"], tmp_path)
    rows = {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "density" in r and "loss" in r}
    density = [rows[s]["density"] for s in range(1, 17)]
    lam = [rows[s]["lambda"] for s in range(1, 17)]
    # step s is taken at progress (s-1)/16: steps 1..4 before the window, 5..12 inside, 13..16 after
    assert density[0] == pytest.approx(1 / (1 + 1 / 11), abs=1e-6)  # σ(0 − log(0.1/1.1)) at log θ = 0
    assert len(set(density[:4])) == 1 and set(lam[:4]) == {0.0}, "gates or λ moved before t_start"
    inside = density[3:12]  # λ starts at 0, so the first window step leaves the gates where they were
    assert all(b <= a for a, b in zip(inside, inside[1:])) and inside[-1] < inside[0] - 0.2, f"density not moving toward b=0.3: {inside}"
    assert all(b > a for a, b in zip(lam[4:12], lam[5:12])), "λ not growing while C > b"
    assert len(set(density[11:])) == 1 and len(set(lam[11:])) == 1, "gates or λ moved after t_end"
    assert set(result["metrics"]["rank_pattern"].values()) <= set(range(0, 9))


def test_sweep_with_submitit_local_launcher_writes_every_result(tmp_path):
    proc = run_cli(["-m", "method=lora,mora", "method.r=2,4", "hydra/launcher=local", *FAST, "trainer.max_steps=4",
                    "trainer.save_steps=4", "trainer.eval_steps=4"], tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(tmp_path.glob("*/result.json"))
    assert len(results) == 4
    combos = {(json.loads(p.read_text())["method"], json.loads(p.read_text())["rank"]) for p in results}
    assert combos == {("lora", 2), ("lora", 4), ("mora", 2), ("mora", 4)}
    again = run_cli(["-m", "method=lora,mora", "method.r=2,4", *FAST, "trainer.max_steps=4", "trainer.save_steps=4",
                     "trainer.eval_steps=4"], tmp_path)
    assert again.returncode == 0 and again.stdout.count("skip:") == 4  # a finished sweep trains 0 steps
    assert len(list((tmp_path / "sweeps").glob("multirun-*.yaml"))) == 2  # each sweep's record kept, not overwritten


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path):
    args = ["method=cola", "method.dropout=0.1", *FAST, "trainer.max_steps=24", "trainer.save_steps=4", "trainer.logging_steps=4"]
    reference = run_cli(args, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    ref = json.loads(next((tmp_path / "reference").glob("*/result.json")).read_text())

    runs = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bench.train", *args], cwd=REPO, env=cli_env(runs),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/checkpoints/checkpoint-12/COMPLETE")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = run_dirs(runs)[0]
    assert not (run_dir / "result.json").exists(), "the kill came too late to test anything"
    resumed = run_cli(args, runs)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    match = [line for line in resumed.stdout.splitlines() if line.startswith("resume:")]
    assert match and int(match[0].rsplit("step ", 1)[1].rstrip(")")) >= 12  # continues, not restarts
    res = json.loads((run_dir / "result.json").read_text())
    assert res["steps"] == 24
    assert res["train_loss"] == ref["train_loss"] and res["metrics"]["eval_loss"] == ref["metrics"]["eval_loss"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps)), "metrics.jsonl has duplicated steps after resume"


def test_paper_scale_without_gpu_exits_2_with_one_line_quickly(tmp_path):
    started = time.time()
    proc = run_cli(["scale=paper", "method=olora", "model=tinyllama-1.1b", "task=arc_easy"], tmp_path)
    assert time.time() - started < 30
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA" in lines[0] and "scale=paper" in lines[0]


@pytest.mark.parametrize("override,expected", [
    ("method=loraa", "method=loraa is not an option of config group 'method'; valid: adalora, adapter_h,"),
    ("method.rr=8", "method.rr=8: 'rr' is not a key of 'method'; valid: alpha,"),
])
def test_unknown_option_or_key_gives_one_line_and_exit_2(override, expected, tmp_path):
    proc = run_cli([override], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: " + expected)
    env = {**cli_env(tmp_path), "HYDRA_FULL_ERROR": "1"}
    full = subprocess.run([sys.executable, "-m", "bench.train", override], cwd=REPO, env=env, capture_output=True, text=True)
    assert full.returncode != 0 and "Traceback" in full.stderr
