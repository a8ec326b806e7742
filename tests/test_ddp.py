"""Data parallelism (bench/distributed.py): a paper-scale job's smoke as 2 CPU processes (torchrun, gloo) ends where
the single process ends — same losses, same adapter — with one result.json and one metrics log, written by rank 0."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from bench.run.distributed import split_global_batch
from bench.errors import UserError
from tests.bench_helpers import REPO, cli_env

JOB = ["experiment=mora_uuid", "scale=paper", "smoke=true", "method=lora", "trainer.per_device_train_batch_size=4",
       "trainer.gradient_accumulation_steps=2"]


def _run(launcher: list[str], runs) -> dict:
    proc = subprocess.run([sys.executable, *launcher, "-m", "bench.train", *JOB], cwd=REPO, env={**cli_env(runs),
                          "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list(runs.glob("*/result.json"))
    assert len(results) == 1, results
    return json.loads(results[0].read_text()) | {"dir": results[0].parent}


def test_two_gloo_processes_end_as_one_process(tmp_path):
    single = _run([], tmp_path / "single")
    ddp = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], tmp_path / "ddp")
    assert single["world_size"] == 1 and ddp["world_size"] == 2
    assert ddp["config"]["trainer"]["gradient_accumulation_steps"] == 1  # 2 processes × 1 = 1 process × 2
    assert ddp["steps"] == single["steps"] == 2
    for key in ("train_loss", "eval_loss"):  # [step, value] pairs
        assert [s for s, _ in ddp[key]] == [s for s, _ in single[key]], key
        assert [v for _, v in ddp[key]] == pytest.approx([v for _, v in single[key]], abs=1e-6), key
    assert ddp["metrics"]["char_acc"] == single["metrics"]["char_acc"]
    assert ddp["train_flops"] == single["train_flops"]  # the tokens of both processes counted once
    one = torch.load(single["dir"] / "final_adapter.pt", weights_only=True)["state"]
    two = torch.load(ddp["dir"] / "final_adapter.pt", weights_only=True)["state"]
    assert one.keys() == two.keys() and all(torch.allclose(one[k], two[k], atol=1e-6) for k in one)
    lines = (ddp["dir"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((single["dir"] / "metrics.jsonl").read_text().splitlines())  # one writer


@pytest.mark.parametrize("world,batch,accumulation,expected", [
    (2, 4, 2, (4, 1)), (2, 4, 1, (2, 1)), (4, 8, 2, (2, 2)), (1, 3, 3, (3, 3))])
def test_the_global_batch_is_split_over_the_processes(monkeypatch, world, batch, accumulation, expected):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    cfg = OmegaConf.create({"trainer": {"per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation}})
    split_global_batch(cfg)
    assert (cfg.trainer.per_device_train_batch_size, cfg.trainer.gradient_accumulation_steps) == expected


def test_a_global_batch_that_does_not_split_is_one_line(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = OmegaConf.create({"trainer": {"per_device_train_batch_size": 3, "gradient_accumulation_steps": 1}})
    with pytest.raises(UserError, match=r"per_device_train_batch_size=3 × gradient_accumulation_steps=1 .* WORLD_SIZE=2"):
        split_global_batch(cfg)
