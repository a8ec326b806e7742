"""HF Trainer + callbacks that call the method hooks (SaLoRA loss/gates/λ, COLA/ReLoRA knots) and log.

The Trainer brings mixed precision, gradient accumulation, multi-GPU, checkpoints and RNG restore; the
method reaches training only through the hooks on ``methods.AdapterMethod``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from methods import AdapterMethod, swap_optimizer_params

from .data import option_mean_logprob
from .trained_state import TRAINED_STATE, load_trained_state_file, save_trained_state
from ..errors import UserError
from ..records import MetricsLog, load_tensor_file

BENCH_STATE = "bench_state.pt"
COMPLETE = "COMPLETE"


class NonFiniteLoss(RuntimeError):
    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def progress_of(state) -> float:
    return state.global_step / max(state.max_steps, 1)


class AdapterTrainer(Trainer):
    """Optimises only ``method.trainable_parameters``, adds the method's regulariser, knows MeZO's choice loss."""

    def __init__(self, *args, method: AdapterMethod, task_kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.task_kind = task_kind
        # The regulariser and the choice loss are per-micro-batch means: let the Trainer divide by the
        # accumulation steps for every loss alike.
        self.model_accepts_loss_kwargs = False
        self._task_loss_sum, self._task_loss_count = 0.0, 0

    def create_accelerator_and_postprocess(self) -> None:
        """accelerate (1.16) turns FSDP on for GPU-type processes only: on CPU processes (gloo) it would quietly wrap the
        model in DDP instead. Give CPU processes the same FSDP plugin, so that a 2-process CPU run takes accelerate's
        own FSDP2 path (fully_shard), as a GPU run does (tests/test_fsdp.py)."""
        super().create_accelerator_and_postprocess()
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        state = self.accelerator.state
        if self.args.fsdp_plugin_args is not None and state.distributed_type == DistributedType.MULTI_CPU:
            plugin = FullyShardedDataParallelPlugin(**self.args.fsdp_plugin_args)
            if state.mixed_precision != "no":
                plugin.set_mixed_precision(state.mixed_precision)
            state.distributed_type, state.fsdp_plugin = DistributedType.FSDP, plugin
            self.is_fsdp_enabled = True

    # ------------------------------------------------------------------ checkpoints: what trains, not the base
    def saves_trained_state(self) -> bool:
        """An adapter run's checkpoint holds the method's trained state alone (the frozen base is loaded again on
        resume): 13.5 GB of LLaMA-2-7B per checkpoint become its adapters. Full training, peft's own models (saved as
        peft adapters already) and sharded runs keep the Trainer's own checkpoint."""
        from peft import PeftModel

        model = self.accelerator.unwrap_model(self.model)
        if isinstance(model, PeftModel) or self.is_fsdp_enabled:
            return False
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return trainable < sum(p.numel() for p in model.parameters()) / 2

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.saves_trained_state():
            return super()._save(output_dir, state_dict)
        if self.args.should_save:
            output = Path(output_dir or self.args.output_dir)
            output.mkdir(parents=True, exist_ok=True)
            save_trained_state(self.method, self.accelerator.unwrap_model(self.model), output / TRAINED_STATE)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        path = Path(resume_from_checkpoint) / TRAINED_STATE
        if not path.is_file():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_trained_state_file(model if model is not None else self.accelerator.unwrap_model(self.model), path)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            kwargs = dict(kwargs)
            self.optimizer = self.method.build_optimizer(self.model, optimizer_cls, kwargs.pop("lr"),
                                                         self.args.weight_decay, **kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        factor = self.method.lr_factor
        if factor is not None and not getattr(scheduler, "jagged", False):
            if not hasattr(scheduler, "lr_lambdas"):
                raise UserError(f"{self.method!r} scales the learning rate per step, which needs a LambdaLR schedule; "
                                f"trainer.lr_scheduler_type={self.args.lr_scheduler_type!r} is not one (valid: cosine, "
                                "linear, constant_with_warmup)")
            # The method's factor (e.g. ReLoRA's jagged schedule) multiplies the base one (its warmup and decay stay).
            scheduler.lr_lambdas = [lambda step, base=base: base(step) * factor(step) for base in scheduler.lr_lambdas]
            scheduler.jagged = True   # the Trainer may ask again; wrap once
        return scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.task_kind == "choice":
            gold = inputs.pop("choice_label")
            inputs.pop("n_candidates")
            scores = option_mean_logprob(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
            scores = scores.view(len(gold), -1)  # a task's examples all have the same number of candidates
            loss, outputs = F.cross_entropy(scores, gold), {"scores": scores}
        else:
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if model.training:
            self._task_loss_sum = self._task_loss_sum + loss.detach().double()  # no host sync per step; sums as floats did
            self._task_loss_count += 1
            extra = self.method.regularization_loss(model, progress_of(self.state))
            if extra is not None:
                loss = loss + extra.to(loss.device)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        # "loss" is what is optimised (SaLoRA's includes its regulariser); "task_loss" is comparable across methods.
        if "loss" in logs and self._task_loss_count:
            total = torch.tensor([0.0, self._task_loss_count], dtype=torch.float64, device=self.args.device)
            total[0] += self._task_loss_sum
            if dist.is_initialized():  # every process's micro-batches, as one process would have averaged them
                dist.all_reduce(total)
            logs["task_loss"] = float(total[0]) / float(total[1])
            self._task_loss_sum, self._task_loss_count = 0.0, 0
        super().log(logs, *args, **kwargs)


class MethodHooks(TrainerCallback):
    """Calls the method's training hooks at the right points of the HF loop."""

    def __init__(self, method: AdapterMethod):
        self.method = method

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.method.on_train_begin(model, state.max_steps)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.method.before_step(model, state.global_step, progress_of(state))

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.method.before_optimizer_step(model, progress_of(state))

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        # Called after optimizer.step() and before zero_grad; global_step still counts the steps done before this one.
        self.method.after_optimizer_step(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.method.knot_due(state.global_step):
            swaps = self.method.tie_knot(model)
            swap_optimizer_params(getattr(optimizer, "optimizer", optimizer), swaps)


class FlopsCounter(TrainerCallback):
    """Training FLOPs: per token, forward 2N + backward to activations 2N + weight gradients 2N_trainable."""

    def __init__(self):
        self.flops = 0.0
        self._tokens_seen = 0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        tokens = state.num_input_tokens_seen - self._tokens_seen
        self._tokens_seen = state.num_input_tokens_seen
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.flops += tokens * (4 * total + 2 * trainable)


class MetricsWriter(TrainerCallback):
    """metrics.jsonl: one line per logging step with loss, lr, eval_loss and the method's stats."""

    KEYS = {"loss": "loss", "task_loss": "task_loss", "learning_rate": "lr", "eval_loss": "eval_loss", "grad_norm": "grad_norm"}

    def __init__(self, log: MetricsLog, method: AdapterMethod, patience: int = 0):
        self.log, self.method, self.patience = log, method, patience
        self._bad = 0

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        row = {self.KEYS[k]: float(v) for k, v in (logs or {}).items() if k in self.KEYS}
        if not row:
            return
        loss = row.get("loss", row.get("eval_loss"))
        if loss is not None and not math.isfinite(loss):
            self._bad += 1
            if self._bad > self.patience:
                raise NonFiniteLoss(f"loss became {loss} at step {state.global_step} "
                                    f"(trainer.nan_patience={self.patience})", state.global_step)
        else:
            self._bad = 0
        if not state.is_world_process_zero:
            return  # one writer: every process sees the same gathered loss, so the checks above agree
        row.update(self.method.log_stats(model))
        self.log.append({"step": state.global_step, **row})


class PeriodicScore(TrainerCallback):
    """Runs a task scorer every ``every`` steps (MoRA's UUID accuracy by step) and logs it. ``all_processes``: a sharded
    model's forward gathers its weights from every process, so every process scores (the same examples, the same
    numbers) and the main one logs; a replicated model is scored by the main process alone."""

    def __init__(self, every: int, score: Callable[[Any], dict], log: MetricsLog, all_processes: bool = False):
        self.every, self.score, self.log, self.all_processes = every, score, log, all_processes
        self.seconds = 0.0  # this process's scoring time, for the run's time breakdown

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if not self.every or state.global_step % self.every or not (state.is_world_process_zero or self.all_processes):
            return
        was_training = model.training
        started = time.perf_counter()
        metrics = self.score(model)
        self.seconds += time.perf_counter() - started
        model.train(was_training)
        if state.is_world_process_zero:
            self.log.append({"step": state.global_step,
                             **{k: v for k, v in metrics.items() if not k.endswith(("_n", "_stderr"))}})


class BenchState(TrainerCallback):
    """Beside each HF checkpoint: the method state and counters, then a COMPLETE marker (written last)."""

    def __init__(self, method: AdapterMethod, flops: FlopsCounter):
        self.method, self.flops = method, flops

    def on_save(self, args, state, control, model=None, **kwargs):
        if dist.is_initialized():
            dist.barrier()  # every process's files (its RNG state) are in the checkpoint before its digest is taken
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        payload = {"method": self.method.state_dict(model), "flops": self.flops.flops,
                   "tokens_seen": self.flops._tokens_seen, "step": state.global_step}
        tmp = ckpt / (BENCH_STATE + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(ckpt / BENCH_STATE)
        marker = {"step": state.global_step, "sha256": checkpoint_digests(ckpt)}
        (ckpt / (COMPLETE + ".tmp")).write_text(json.dumps(marker, sort_keys=True))
        (ckpt / (COMPLETE + ".tmp")).replace(ckpt / COMPLETE)

    def restore(self, ckpt: Path, model) -> int:
        payload = load_tensor_file(Path(ckpt) / BENCH_STATE)
        state = payload["method"]
        self.method.restore_structure(model, state)
        self.method.load_state_dict(state, model=model)
        self.flops.flops, self.flops._tokens_seen = payload["flops"], payload["tokens_seen"]
        return int(payload["step"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_files(ckpt: Path) -> list[str]:
    """Every file of a checkpoint (relative paths), the COMPLETE marker aside."""
    return [str(p.relative_to(ckpt)) for p in sorted(ckpt.rglob("*")) if p.is_file() and not p.name.startswith(COMPLETE)]


def checkpoint_digests(ckpt: Path) -> dict[str, str]:
    """sha256 of every file of a checkpoint (relative path → digest), the COMPLETE marker aside."""
    return {name: _sha256(ckpt / name) for name in checkpoint_files(ckpt)}


def checkpoint_damage(ckpt: Path) -> str | None:
    """What is wrong with a checkpoint that has its COMPLETE marker, or None when every file matches its digest.
    A marker without digests (not a JSON object, or no ``sha256``) vouches for nothing and counts as damage."""
    try:
        marker = json.loads((ckpt / COMPLETE).read_text())
    except (OSError, ValueError) as err:
        return f"unreadable {COMPLETE} marker ({err})"
    expected = marker.get("sha256") if isinstance(marker, dict) else None
    if not isinstance(expected, dict) or not expected:
        return f"its {COMPLETE} marker lists no checksums"
    present = set(checkpoint_files(ckpt))
    for name in sorted(present - set(expected)):
        return f"{name} is not listed in its {COMPLETE} marker"
    for name, digest in sorted(expected.items()):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"its {COMPLETE} marker names {name!r}, outside the checkpoint"
        path = ckpt / name
        if not path.is_file():
            return f"{name} is missing"
        if _sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def last_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest intact checkpoint. Partial ones (killed mid-save: no COMPLETE marker) are ignored; a damaged one
    (a file missing or not matching its checksum) is set aside as broken-checkpoint-N, with one line saying so,
    and the previous one is used."""
    if not checkpoint_dir.is_dir():
        return None
    done = sorted((p for p in checkpoint_dir.glob("checkpoint-*") if (p / COMPLETE).exists()),
                  key=lambda p: int(p.name.split("-")[1]), reverse=True)
    for ckpt in done:
        damage = checkpoint_damage(ckpt)
        if damage is None:
            return ckpt
        aside = ckpt.with_name("broken-" + ckpt.name)
        if aside.exists():
            shutil.rmtree(aside)
        ckpt.rename(aside)
        print(f"resume: {ckpt.name} is damaged ({damage}); set aside as {aside.name}, trying the previous checkpoint")
    return None
