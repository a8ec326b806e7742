"""The suite's own training loop as a `bench.perf` row: the Trainer `bench.train` builds, timed step by step.

Each call runs the Trainer for a block of two optimizer steps (``trainer.train()`` again on the same model and
optimizer) and returns the second step's time, taken between two ``on_step_end`` callbacks. That time is everything
the loop does between two steps — fetching and collating the batch, the method's hooks, forward, backward, gradient
clipping, the optimizer and scheduler, token counting, logging — and the blocks interleave with the other rows.
(The Trainer runs in the benchmark's own thread: a second thread that has run torch ops keeps its own OpenMP team,
which measurably slows every other thread's ops.)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from omegaconf import OmegaConf
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from ..paths import CONF_DIR as CONF

BLOCK_STEPS = 2  # the first step of a block pays train()'s start-up; the second is timed


class StepClock(TrainerCallback):
    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


class SuiteLoop:
    """``step()`` runs one block and returns the seconds of its last step (conf/trainer/default.yaml's loop; no
    evaluation, no checkpoints)."""

    def __init__(self, model, method, ids: torch.Tensor, labels: torch.Tensor):
        from ..run.data import Collator
        from ..records import MetricsLog
        from ..run.steps import training_arguments
        from ..run.trainer import AdapterTrainer, FlopsCounter, MethodHooks, MetricsWriter

        self._tmp = tempfile.TemporaryDirectory(prefix="lorabench-perf-")
        trainer_cfg = OmegaConf.merge(OmegaConf.load(CONF / "trainer" / "default.yaml"), {
            "max_steps": BLOCK_STEPS, "per_device_train_batch_size": ids.shape[0], "eval_strategy": "no",
            "save_strategy": "no", "learning_rate": 1e-4})
        cfg = OmegaConf.create({"trainer": trainer_cfg, "seed": 0, "logger": {"report_to": []}})
        args = training_arguments(cfg, Path(self._tmp.name), has_eval=False)
        args.disable_tqdm = True
        rows = [{"input_ids": row, "labels": label} for row, label in zip(ids.cpu().tolist(), labels.cpu().tolist())]
        self.clock = StepClock()
        callbacks = [MethodHooks(method), FlopsCounter(),
                     MetricsWriter(MetricsLog(Path(self._tmp.name)), method, int(trainer_cfg.nan_patience)), self.clock]
        self.trainer = AdapterTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), callbacks=callbacks,
                                      data_collator=Collator(0), method=method,
                                      task_kind="lm" if labels.shape == ids.shape else "cls")
        self.trainer.remove_callback(PrinterCallback)  # the end-of-training summary line is not a perf result

    def step(self) -> float:
        self.clock.ends.clear()
        self.trainer.train()
        return self.clock.ends[-1] - self.clock.ends[-2]

    def close(self) -> None:
        self._tmp.cleanup()
