"""One run's frame: the config checks, the lock on its directory and the refusal of another run's; the run itself is
bench/run/steps.py. Everything written goes through ``records``; the run dir comes from Hydra."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from . import distributed
from ..errors import DiskFull, is_disk_full
from ..records import RunRefused, claim_run_dir, run_lock
from ..resolvers import run_id, run_identity
from ..validate import validate_config
from .steps import train_and_evaluate


def execute(cfg: DictConfig, run_dir: Path, experiment: str | None = None) -> dict[str, Any]:
    """One run, start to result.json; a full disk anywhere is one line (DiskFull) and the same command resumes."""
    try:
        return execute_locked(cfg, run_dir, experiment)
    except OSError as err:
        if is_disk_full(err):
            raise DiskFull.from_os_error(err) from err
        raise


def execute_locked(cfg: DictConfig, run_dir: Path, experiment: str | None) -> dict[str, Any]:
    """One process trains in a run directory at a time, and only the run the directory was made for. Rank 0 holds
    the lock for the whole job; every rank follows its decision."""
    validate_config(cfg)  # before anything is read, written or skipped: `force=maybe` must not retrain
    identity, name = run_identity(cfg), run_id(_root_=cfg)  # before smoke/world settings rewrite cfg, as the dir name
    distributed.adopt_submitit_world()
    distributed.start(timeout_s=float(cfg.trainer.get("ddp_timeout") or 1800))
    with ExitStack() as held:
        refusal = None
        if distributed.is_main():
            try:
                held.enter_context(run_lock(run_dir, wait=bool(cfg.get("wait_for_lock"))))
                claim_run_dir(run_dir, identity, name)
            except RunRefused as err:
                refusal = str(err)
        refusal = distributed.from_main(refusal)
        if refusal:
            raise RunRefused(refusal)
        return train_and_evaluate(cfg, run_dir, experiment)
