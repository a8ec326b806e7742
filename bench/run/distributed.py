"""Data-parallel runs: one process per device (torchrun, or submitit with ``tasks_per_node`` = GPUs), HF Trainer's
DDP doing the gradient averaging, and this module doing the rest — the global batch preserved, every file written
once, by rank 0.

    torchrun --standalone --nproc_per_node 2 -m bench.train experiment=mora_uuid smoke=true     # 2 CPU processes

The world comes from the launcher's environment (WORLD_SIZE, RANK, LOCAL_RANK): torchrun sets it; under submitit
with ``hydra.launcher.tasks_per_node`` = GPUs per node (and ``gpus_per_node`` alike), each task exports it from
SLURM's through submitit's own helper. The process group starts before anything is read or written, so rank 0 can
prepare the run directory while the others wait.
"""

from __future__ import annotations

import datetime
import os
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from omegaconf import DictConfig, open_dict

from ..errors import UserError

T = TypeVar("T")


def adopt_submitit_world() -> None:
    """A submitit task of a multi-task job: export torch's env:// variables (MASTER_ADDR/PORT, RANK, WORLD_SIZE,
    LOCAL_RANK) from the job's SLURM environment. Nothing to do under torchrun or in a single process."""
    if "WORLD_SIZE" in os.environ:
        return
    try:
        from submitit import JobEnvironment

        tasks = JobEnvironment().num_tasks
    except (ImportError, RuntimeError):  # not inside a submitit job
        return
    if tasks > 1:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)  # start() picks the device by LOCAL_RANK


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def from_main(value: T) -> T:
    """Rank 0's ``value``, on every rank (a decision only rank 0 can make, such as taking the run's lock)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def start(timeout_s: float = 1800.0) -> None:
    """Join the launcher's process group (gloo on CPU, nccl on GPUs); HF Trainer's accelerate reuses it. Its timeout
    (``trainer.ddp_timeout``) bounds only the training loop's collectives: the processes leave the group before the
    main one scores (``leave_all_but_main``), so a long evaluation never waits on a collective."""
    if world_size() > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def leave_all_but_main() -> bool:
    """After the last collective of a run: every process leaves the group together (nothing is left waiting on a
    collective while the main process scores for an hour), and only the main one goes on. True on the main one."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return is_main()


def finish() -> None:
    """Every process waits until rank 0 has written the run's files, then all leave the group together: a process
    that exits with its gloo group alive can abort in the group's threads (SIGABRT) while the others still work."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main_first(work: Callable[[], T]) -> T:
    """Rank 0 does ``work`` first (it may write, rename or set aside); the others do it once rank 0 is done."""
    if is_main():
        result = work()
    barrier()
    if not is_main():
        result = work()
    return result


def split_global_batch(cfg: DictConfig) -> None:
    """The configs state one device's batch × accumulation, the global batch the papers give. Across W processes
    each takes 1/W of the accumulation steps (so every optimizer step averages the same micro-batches as one
    process would), or, where the accumulation does not divide, 1/W of the per-device batch."""
    world = world_size()
    if world == 1:
        return
    batch, accumulation = cfg.trainer.per_device_train_batch_size, cfg.trainer.gradient_accumulation_steps
    with open_dict(cfg):
        if accumulation % world == 0:
            cfg.trainer.gradient_accumulation_steps = accumulation // world
        elif batch % world == 0:
            cfg.trainer.per_device_train_batch_size = batch // world
        else:
            raise UserError(f"trainer.per_device_train_batch_size={batch} × gradient_accumulation_steps={accumulation} "
                            f"cannot be split over WORLD_SIZE={world} processes; valid: a batch or an accumulation "
                            f"divisible by {world}")
