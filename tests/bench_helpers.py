"""Helpers for the bench tests: compose a config in-process, or run the real CLI in a subprocess."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

import bench.resolvers  # noqa: F401  (${cwd:}, ${run_id:})
from tests.conftest import REPO, SHARED

CONF = REPO / "conf"
FAST = [  # a few seconds on 2 cores
    "task=uuid", "task.num_train=32", "task.num_eval=8", "trainer.max_steps=16", "trainer.learning_rate=3e-3",
    "trainer.logging_steps=4", "trainer.eval_steps=8", "trainer.save_steps=8", "trainer.per_device_train_batch_size=8",
]


def compose_cfg(overrides: list[str], runs_dir: Path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*overrides, f"paths.runs_dir={runs_dir}", f"paths.shared_data={SHARED / 'data'}"])


def run_inprocess(overrides: list[str], tmp_path: Path, name: str = "run") -> tuple[dict, Path]:
    from bench.run.execute import execute

    cfg = compose_cfg(overrides, tmp_path)
    run_dir = tmp_path / name
    return execute(cfg, run_dir), run_dir


def cli_env(runs_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(LORABENCH_RUNS=str(runs_dir), LORABENCH_DATA=str(SHARED / "data"), PYTHONUNBUFFERED="1",
               TQDM_DISABLE="1")
    return env


def run_cli(args: list[str], runs_dir: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.train", *args], cwd=REPO, env=cli_env(runs_dir),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def run_dirs(runs: Path) -> list[Path]:
    """The run directories under a runs directory: its hidden entries (the shared tokenisation cache) are not runs."""
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
