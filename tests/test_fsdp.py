"""Sharded training through accelerate's FSDP2 (fully_shard), proven on 2 CPU processes (gloo): a full fine-tuning
job of the paper scale, sharded across them, ends where the single process ends; and the processes leave their group
before the main one scores, so no evaluation, however long, waits on a collective."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.bench_helpers import REPO, cli_env

pytestmark = pytest.mark.slow

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# MoRA's 7B FFT on UUID (conf/resources/fsdp4: fp32 master weights, FSDP full shard, activation checkpointing), as a
# miniature; 2 processes share its global batch (the single process runs it whole, unsharded).
FFT = ["experiment=mora_uuid_fft", "scale=paper", "smoke=true", "trainer.per_device_train_batch_size=4",
       "trainer.gradient_accumulation_steps=2"]


def run(launcher: list[str], job: list[str], runs) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, *launcher, "-m", "bench.train", *job], cwd=REPO,
                          env={**cli_env(runs), "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = runs.glob("*/result.json")
    return json.loads(result.read_text()) | {"dir": result.parent}, proc.stdout + proc.stderr


def test_two_cpu_processes_under_fsdp_end_as_one_process(tmp_path):
    single, _ = run([], FFT, tmp_path / "single")
    sharded, log = run(TORCHRUN, FFT, tmp_path / "fsdp")
    assert single["world_size"] == 1 and sharded["world_size"] == 2
    assert sharded["config"]["trainer"]["fsdp"] and not single["config"]["trainer"]["fsdp"]   # sharded vs whole
    assert single["trainable_params"] == sharded["trainable_params"] == single["total_params"]   # every weight
    for key in ("train_loss", "eval_loss"):
        assert [s for s, _ in sharded[key]] == [s for s, _ in single[key]], key
        assert [v for _, v in sharded[key]] == pytest.approx([v for _, v in single[key]], rel=1e-5), key
    assert sharded["metrics"]["char_acc"] == pytest.approx(single["metrics"]["char_acc"], abs=1e-6)
    one = torch.load(single["dir"] / "final_adapter.pt", weights_only=True)["state"]
    two = torch.load(sharded["dir"] / "final_adapter.pt", weights_only=True)["state"]
    assert one.keys() == two.keys() and all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)


def test_a_long_evaluation_on_the_main_process_outlasts_the_process_group_timeout(tmp_path):
    """A 2-second process-group timeout, and a main process that scores 400 UUID pairs one at a time by generation
    after training (batched they took 1 s, too close to the timeout to prove anything): the other process has left
    the group, so nothing times out."""
    job = ["experiment=mora_uuid_small", "method=lora", "method.r=4", "trainer.max_steps=4", "trainer.save_steps=4",
           "task.score_every=0", "+trainer.ddp_timeout=2", "task.num_train=400", "task.num_eval=400",
           "trainer.per_device_eval_batch_size=1"]
    result, log = run(TORCHRUN, job, tmp_path)
    assert result["world_size"] == 2 and result["time_s"]["final_eval"] > 2.0   # the scoring outlasted the timeout
    assert "Timeout" not in log and "timed out" not in log


def test_one_process_seeing_several_gpus_is_refused_rather_than_data_parallel(monkeypatch, tmp_path):
    from bench.errors import UserError
    from bench.run.steps import check_environment
    from tests.bench_helpers import compose_cfg

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match="4 GPUs are visible to one process .* torchrun --nproc_per_node 4"):
        check_environment(compose_cfg([], tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "4")   # one process per GPU: fine
    check_environment(compose_cfg([], tmp_path))
