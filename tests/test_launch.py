"""Launch hygiene at paper scale: no sweep launches the same run twice, a sweep too large for one SLURM array is
split into arrays SLURM accepts, and the launcher asks for GPUs, tasks and host memory per configured device."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.sweep.launch import ARRAY_LIMIT, Sweep, split_array
from bench.papers import PAPERS, load
from bench.resolvers import run_id
from bench.sweep.sweeps import _compose, sweep_jobs as launched_jobs
from tests.test_setup_facts import sweep_jobs

PAPER_SCALE = [e for paper in PAPERS for e in load(paper).experiment_files("paper")]


def effective_identity(cfg) -> str:
    """What a job computes: its run id, with the rank of a method that has none (FFT, prompt and prefix tuning ignore
    ``method.r``) set to one value, so two jobs that differ only there count as one run twice."""
    from methods import METHODS

    copy = cfg.copy()
    if getattr(METHODS[copy.method.name], "rankless", copy.method.name in ("fft", "prefix", "prompt")):
        copy.method.r = 0
    return run_id(_root_=copy)


@pytest.mark.parametrize("experiment", PAPER_SCALE)
def test_no_paper_scale_sweep_launches_the_same_run_twice(experiment):
    jobs = sweep_jobs(experiment)
    twice = [rid for rid, n in Counter(effective_identity(cfg) for cfg in jobs).items() if n > 1]
    assert not twice, f"{experiment}: {len(twice)} run(s) launched more than once, e.g. {twice[0]}"


def test_a_sweep_beyond_one_slurm_array_is_split_into_arrays_slurm_accepts():
    sweep = Sweep("cola_table2", "cola_table2", ["scale=paper", "hydra/launcher=slurm"])
    everything = {tuple(sorted(job)) for job in launched_jobs(sweep.experiment, sweep.overrides)}
    assert len(everything) > ARRAY_LIMIT
    parts = split_array(sweep)
    sizes = [len(launched_jobs(p.experiment, p.overrides)) for p in parts]
    assert len(parts) > 1 and max(sizes) <= ARRAY_LIMIT and sum(sizes) == len(everything)
    covered = {tuple(sorted(job)) for p in parts for job in launched_jobs(p.experiment, p.overrides)}
    assert covered == everything   # the same jobs, each once


def test_a_small_sweep_stays_one_array():
    sweep = Sweep("mora_uuid", "mora_uuid", ["scale=paper", "hydra/launcher=slurm"])
    assert split_array(sweep) == [sweep]


@pytest.mark.parametrize("devices", [1, 4])
def test_the_slurm_launcher_asks_for_one_task_and_gpu_per_device_and_scales_host_memory(devices):
    cfg = _compose(["experiment=mora_uuid", "scale=paper", "hydra/launcher=slurm", f"devices={devices}"],
                   hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher.tasks_per_node == launcher.gpus_per_node == devices
    assert launcher.mem_gb == 64 * devices


def test_an_evaluation_task_is_fitted_to_its_own_length_not_the_trained_tasks():
    from bench.run.steps import eval_lengths

    cfg = _compose(["experiment=mora_table1_math", "scale=paper"])
    assert cfg.task.max_length == 512 and eval_lengths(cfg, list(cfg.task.eval_tasks)) == {"math": 1024}
    tulu = _compose(["experiment=mora_table1_tulu", "scale=paper"])
    assert eval_lengths(tulu, list(tulu.task.eval_tasks)) == {"mmlu_0shot": 2048, "mmlu_5shot": 2048}   # no own file


@pytest.mark.parametrize("experiment", PAPER_SCALE)
def test_every_paper_scale_jobs_lengths_fit_its_model(experiment):
    """Each job's training length and each of its evaluation tasks' own lengths fit the model's positions."""
    from bench.run.steps import eval_lengths

    for cfg in sweep_jobs(experiment):
        shape = cfg.model.get("shape") or cfg.model.get("config") or {}
        positions = shape.get("max_position_embeddings")
        assert positions, f"{experiment}: model={cfg.model.name} states no max_position_embeddings in its conf file"
        lengths = {cfg.task.name: cfg.task.max_length, **eval_lengths(cfg, list(cfg.task.get("eval_tasks") or {}))}
        too_long = {task: n for task, n in lengths.items() if n > positions - 2 * (cfg.model.arch == "encoder")}
        assert not too_long, f"{experiment}: {too_long} exceed model={cfg.model.name}'s {positions} positions"
