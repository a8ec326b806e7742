"""One run, start to finish, as named steps: prepare → load → fit to length → datasets → trainer → resume → train →
score → save → result.json. Everything written goes through ``records``; the run dir comes from Hydra."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments, set_seed

from . import distributed
from ..errors import UserError
from ..evaluate import evaluate_final, scorer_for
from ..export import export_run, save_final_state
from ..records import (RESULT, MetricsLog, atomic_write_json, atomic_write_text, completed_result, drop_replaced_run,
                       git_sha, set_aside_previous_run, versions, write_run_config)
from ..tasks import get_spec, load_task_data, task_max_length
from ..validate import BENCH_TRAINER_KEYS
from ..tasks.readers import Stream
from .data import Collator, PackedStream, fit_examples, tokenized
from .miniature import apply_smoke, miniature_length, smoke_eval
from .models import count_parameters, load_model, load_tokenizer
from .trainer import (AdapterTrainer, BenchState, FlopsCounter, MethodHooks, MetricsWriter, PeriodicScore,
                      last_complete_checkpoint)


@dataclass
class Setup:
    """What a run trains: the method, the task, the tokenizer, its data and the model with the method applied."""
    method: Any
    spec: Any
    tokenizer: Any
    data: Any
    model: Any
    trainable: int
    total: int
    max_length: int
    eval_lengths: dict[str, int] = field(default_factory=dict)   # each task.eval_tasks entry's own max_length
    longest: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class Loop:
    """The Trainer and the callbacks that log, count and checkpoint the run's state."""
    trainer: Any
    metrics_log: MetricsLog
    flops: FlopsCounter
    bench_state: BenchState
    periodic: PeriodicScore | None
    eval_ds: Any
    streamed: bool


def check_environment(cfg: DictConfig) -> None:
    if cfg.scale.require_gpu and not torch.cuda.is_available():
        where = cfg.model.path if cfg.model.source == "hub" else cfg.model.name
        raise UserError(f"scale={cfg.scale.name} needs a CUDA GPU and hub access (model {where!r}, task "
                        f"{cfg.task.name!r}); no CUDA device found: use scale=tiny for an offline CPU run")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible > 1 and distributed.world_size() == 1:   # the Trainer would fall back to nn.DataParallel
        raise UserError(f"{visible} GPUs are visible to one process (CUDA_VISIBLE_DEVICES); valid: one process per GPU "
                        f"(devices={visible} under SLURM, or torchrun --nproc_per_node {visible} -m bench.train ...), "
                        "or CUDA_VISIBLE_DEVICES naming one GPU")


def build_method(cfg: DictConfig):
    try:
        return instantiate(cfg.method)
    except Exception as err:  # Hydra wraps the ValueError; keep its one line
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ValueError):
            raise UserError(str(cause)) from err
        raise


def training_arguments(cfg: DictConfig, output_dir: Path, has_eval: bool) -> TrainingArguments:
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if k not in BENCH_TRAINER_KEYS}
    if not has_eval:
        kwargs["eval_strategy"] = "no"
    try:
        return TrainingArguments(
            output_dir=str(output_dir), seed=cfg.seed, data_seed=cfg.seed, remove_unused_columns=False,
            report_to=list(cfg.logger.report_to), include_num_input_tokens_seen=True, save_only_model=False,
            load_best_model_at_end=False,  # a "best" restore could undo a COLA knot or a SaLoRA window
            use_cpu=not torch.cuda.is_available(), disable_tqdm=False, **kwargs,
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"trainer: {str(err).splitlines()[0]}") from err


@torch.no_grad()
def delta_singular_values(method, model, threshold: float = 0.1) -> dict[str, int]:
    """Per adapted module, how many singular values of the learned ΔW exceed ``threshold`` (MoRA Fig. 5), computed
    module by module on the module's device (any model size: no copy of the weights is kept). ΔW is the whole run's:
    the live adapter's plus every update a restart merged into the base (ReLoRA/ReMoRA restarts, COLA knots), as the
    paper's merged ΔW."""
    return {name: int((torch.linalg.svdvals(layer.total_delta()) > threshold).sum())
            for name, layer in method.adapted_layers(model)}


def time_breakdown(wall: float, loop: float, scoring: float, final_eval: float) -> dict[str, float]:
    """Where this process's wall time went: training steps (the Trainer's loop less the periodic scoring inside it;
    checkpoint saving included), periodic scoring, final evaluation, and the rest (start-up, loading, writing)."""
    parts = {"training": loop - scoring, "periodic_scoring": scoring, "final_eval": final_eval}
    parts["other"] = wall - sum(parts.values())
    return {**{k: round(v, 3) for k, v in parts.items()}, "training_share": round(parts["training"] / wall, 4)}


# ----------------------------------------------------------------------------------------------- the steps
def prepare_config(cfg: DictConfig) -> None:
    if cfg.get("smoke"):
        apply_smoke(cfg)  # the paper-scale job on a miniature of its model and the local sample data
    distributed.split_global_batch(cfg)  # W processes: the same global batch (bench/run/distributed.py)


def finished_result(cfg: DictConfig, run_dir: Path) -> dict | None:
    run_dir.mkdir(parents=True, exist_ok=True)
    done = completed_result(run_dir)
    if done is not None and not cfg.force:
        print(f"skip: {run_dir / RESULT} exists (force=true retrains)")
        return done
    return None


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> None:
    if distributed.is_main():  # one writer; the others wait for the run directory to be ready
        if cfg.force:
            set_aside_previous_run(run_dir)  # from step 0, never continuing a finished run; old one kept until the end
        write_run_config(cfg, run_dir)
    distributed.barrier()


def start(cfg: DictConfig) -> float:
    """Environment, seeds and determinism; the run's clock starts here."""
    check_environment(cfg)
    if cfg.logger.get("wandb_mode"):
        os.environ.setdefault("WANDB_MODE", cfg.logger.wandb_mode)
    started = time.time()
    set_seed(cfg.seed)
    torch.use_deterministic_algorithms(bool(cfg.deterministic), warn_only=True)
    return started


def load(cfg: DictConfig) -> Setup:
    method = build_method(cfg)  # bad hyperparameters fail before anything heavy is loaded
    spec = get_spec(cfg.task.name)
    tokenizer = load_tokenizer(cfg.model)
    data = load_task_data(cfg.task, cfg.seed, use_local=cfg.scale.local_data)
    head = "seq_cls" if spec.kind == "cls" else "causal_lm"
    if head == "causal_lm" and cfg.model.arch == "encoder":
        raise UserError(f"model={cfg.model.name} is an encoder; task={cfg.task.name} needs a causal LM "
                        f"(valid models for it: decoder models such as stories260k, tiny_llama, tinyllama-1.1b)")
    model = load_model(cfg.model, head, spec.num_labels, tokenizer)
    try:
        model = method.apply(model)
    except ValueError as err:
        raise UserError(str(err)) from err
    trainable, total = count_parameters(model)
    return Setup(method, spec, tokenizer, data, model, trainable, total, cfg.task.max_length,
                 eval_lengths(cfg, list(data.extra_eval)))


def eval_lengths(cfg: DictConfig, names: list[str]) -> dict[str, int]:
    """Each task.eval_tasks entry's own max_length (its conf/task file; in a smoke run, in the miniature's tokens),
    else the trained task's (an evaluation-only task such as MMLU)."""
    lengths = {}
    for name in names:
        own = task_max_length(name)
        lengths[name] = cfg.task.max_length if own is None else miniature_length(own) if cfg.get("smoke") else own
    return lengths


def fit_to_length(cfg: DictConfig, setup: Setup) -> None:
    """No example is ever cut: each is checked against its own task's max_length (an evaluation task of
    task.eval_tasks against its own, MATH's 1,024 beside MetaMath's 512), and refused or dropped as task.overlong says."""
    data, overlong = setup.data, cfg.task.get("overlong", "error")
    fitted, setup.longest, setup.dropped = fit_examples(
        cfg.task.name, setup.spec.kind, {"train": data.train, "dev": data.dev, "eval": data.eval}, setup.tokenizer,
        setup.max_length, overlong)
    data.train, data.dev, data.eval = fitted["train"], fitted["dev"], fitted["eval"]
    for name, (extra_spec, examples, source) in data.extra_eval.items():
        kept, extra_longest, extra_dropped = fit_examples(name, extra_spec.kind, {f"eval:{name}": examples},
                                                          setup.tokenizer, setup.eval_lengths[name], overlong)
        data.extra_eval[name] = (extra_spec, kept[f"eval:{name}"], source)
        setup.longest, setup.dropped = max(setup.longest, extra_longest), {**setup.dropped, **extra_dropped}
    if cfg.get("smoke"):
        data.dev, data.eval = smoke_eval(data.dev), smoke_eval(data.eval)
        data.extra_eval = {n: (t, smoke_eval(rows), src) for n, (t, rows, src) in data.extra_eval.items()}
    if not data.eval and setup.dropped.get("eval"):
        raise UserError(f"task={cfg.task.name}: all {setup.dropped['eval']} evaluation examples are longer than "
                        f"task.max_length={setup.max_length} and were dropped (task.overlong=drop); raise task.max_length")


def build_datasets(cfg: DictConfig, setup: Setup) -> tuple[Any, Any, bool]:
    """(training set, evaluation set or None, whether training streams its corpus)."""
    data, tokenizer, kind, max_length = setup.data, setup.tokenizer, setup.spec.kind, setup.max_length
    streamed = isinstance(data.train, Stream)
    if streamed and (cfg.trainer.get("max_steps") or -1) <= 0:
        raise UserError(f"task={cfg.task.name} streams its training corpus ({data.sources['train']}), which has no "
                        f"length: set trainer.max_steps (now {cfg.trainer.get('max_steps')}); valid: an integer >= 1")
    cache = Path(cfg.paths.runs_dir) / ".cache" / "tokenized"   # shared by the runs of a runs directory

    def encoded(examples):  # the main process writes the cached tokenisation first; the others read it
        return distributed.main_first(lambda: tokenized(kind, examples, tokenizer, max_length, cache))

    train_ds = PackedStream(data.train, tokenizer, max_length) if streamed else encoded(data.train)
    eval_examples = data.dev or data.eval
    eval_ds = encoded(eval_examples) if eval_examples else None
    if not streamed and len(train_ds) == 0:
        raise UserError(f"task={cfg.task.name}: no training examples after loading {data.sources['train']!r}")
    return train_ds, eval_ds, streamed


def build_loop(cfg: DictConfig, run_dir: Path, setup: Setup, train_ds, eval_ds, streamed: bool) -> Loop:
    metrics_log = MetricsLog(run_dir)
    _, scorer = scorer_for(setup.spec)
    eval_batch = cfg.trainer.per_device_eval_batch_size

    def score(model):
        return scorer(model, setup.tokenizer, setup.data.eval, setup.max_length, eval_batch) if scorer else {}

    flops = FlopsCounter()
    bench_state = BenchState(setup.method, flops)
    callbacks = [MethodHooks(setup.method), flops, MetricsWriter(metrics_log, setup.method, cfg.trainer.nan_patience),
                 bench_state]
    periodic = PeriodicScore(cfg.task.score_every, score, metrics_log) if cfg.task.get("score_every") and scorer else None
    if periodic:
        callbacks.append(periodic)
    trainer = AdapterTrainer(
        model=setup.model, args=training_arguments(cfg, run_dir / "checkpoints", eval_ds is not None),
        train_dataset=train_ds, eval_dataset=eval_ds, data_collator=Collator(setup.tokenizer.pad_token_id),
        processing_class=setup.tokenizer, callbacks=callbacks, method=setup.method, task_kind=setup.spec.kind,
    )
    if periodic:
        periodic.all_processes = trainer.is_fsdp_enabled
    return Loop(trainer, metrics_log, flops, bench_state, periodic, eval_ds, streamed)


def resume(loop: Loop, run_dir: Path, model) -> Path | None:
    """The newest intact checkpoint, with the method's state and the metrics log brought back to it."""
    checkpoint = distributed.main_first(lambda: last_complete_checkpoint(run_dir / "checkpoints"))  # may set one aside
    if checkpoint is not None:
        step = loop.bench_state.restore(checkpoint, model)
        if distributed.is_main():
            loop.metrics_log.truncate_after(step)
        print(f"resume: {checkpoint} (step {step})")
    elif loop.metrics_log.path.exists() and distributed.is_main():
        loop.metrics_log.path.unlink()  # a previous attempt died before its first checkpoint
    return checkpoint


def train(loop: Loop, checkpoint: Path | None) -> tuple[float, float, list[float]]:
    """(the training loop's seconds, when evaluation started, the final eval loss if any)."""
    loop_started = time.time()
    loop.trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    loop_s = time.time() - loop_started
    eval_started = time.time()
    # Decided from the Trainer's own history, which every process holds alike (evaluate() is collective).
    state = loop.trainer.state
    final_eval = [h["eval_loss"] for h in state.log_history if "eval_loss" in h and h.get("step") == state.global_step]
    if not final_eval and loop.eval_ds is not None:
        final_eval = [loop.trainer.evaluate()["eval_loss"]]
    return loop_s, eval_started, final_eval


def gather_sharded_model(loop: Loop, model) -> dict | None:
    """Under FSDP, the model's full state gathered onto the main process's CPU (a collective: every process calls
    it); None for a replicated (DDP) model, whose main-process copy is already whole."""
    if not loop.trainer.is_fsdp_enabled:
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def unsharded_model(cfg: DictConfig, setup: Setup, state: dict):
    """The trained model as one module again, for the main process to score and save without a process group: the
    model re-loaded from its source, the method applied, the gathered state loaded (every key)."""
    head = "seq_cls" if setup.spec.kind == "cls" else "causal_lm"
    model = setup.method.apply(load_model(cfg.model, head, setup.spec.num_labels, setup.tokenizer))
    model.load_state_dict(state)
    return model


def score(cfg: DictConfig, run_dir: Path, setup: Setup, final_eval: list[float]) -> tuple[dict, dict, dict]:
    """(metrics, the headline scorer's provenance, each task.eval_tasks entry's size and provenance)."""
    spec, model, tokenizer, data = setup.spec, setup.model, setup.tokenizer, setup.data
    eval_batch = cfg.trainer.per_device_eval_batch_size
    metrics: dict[str, Any] = {}
    if final_eval:
        metrics["eval_loss"] = final_eval[-1]
        if spec.kind == "lm":
            metrics["perplexity"] = float(torch.exp(torch.tensor(final_eval[-1])))
    final_metrics, provenance = evaluate_final(spec, model, tokenizer, data.eval, run_dir,
                                               use_builtin=not (cfg.scale.local_data or data.eval_named),
                                               max_length=setup.max_length, batch_size=eval_batch)
    metrics.update(final_metrics)
    scored_tasks = {}
    for name, (extra_spec, examples, source) in data.extra_eval.items():
        extra_metrics, extra_provenance = evaluate_final(extra_spec, model, tokenizer, examples, run_dir,
                                                         use_builtin=not cfg.scale.local_data,
                                                         max_length=setup.eval_lengths[name], batch_size=eval_batch)
        metrics.update({f"{name}/{k}": v for k, v in extra_metrics.items()})
        scored_tasks[name] = {"n": len(examples), "source": source, **extra_provenance}
    metrics.update(setup.method.final_metrics(model))
    return metrics, provenance, scored_tasks


def build_result(cfg: DictConfig, experiment: str | None, setup: Setup, loop: Loop, metrics: dict, provenance: dict,
                 scored_tasks: dict, exported: dict | None, delta_sv: dict, rows: list[dict],
                 timing: dict[str, float]) -> dict[str, Any]:
    data, state = setup.data, loop.trainer.state
    return {
        "experiment": experiment, "method": setup.method.name, "model": cfg.model.name, "task": cfg.task.name,
        "rank": cfg.method.r, "seed": cfg.seed, "scale": cfg.scale.name, "smoke": bool(cfg.get("smoke")), "status": "ok",
        "metrics": metrics, "headline_metric": setup.spec.metric, "scorer": provenance.get("scorer", "trainer:eval_loss"),
        "lm_eval": provenance.get("lm_eval"), "eval_tasks": scored_tasks, "export": exported, "delta_sv_gt_0.1": delta_sv,
        "train_loss": [[r["step"], r.get("task_loss", r["loss"])] for r in rows if "loss" in r],
        "eval_loss": [[r["step"], r["eval_loss"]] for r in rows if "eval_loss" in r],
        "trainable_params": setup.trainable, "total_params": setup.total, "train_flops": loop.flops.flops,
        # HF's own count (6 × parameters × tokens, every parameter as if trained), what COLA's Table 4 reads off the
        # trainer state; train_flops above is the suite's, which sees what an adapter's rank saves.
        "trainer_flos": float(state.total_flos),
        "steps": state.global_step, "world_size": distributed.world_size(),
        "examples": {"train": "streamed" if loop.streamed else len(data.train), "eval": len(data.eval),
                     "longest_tokens": setup.longest, "dropped_overlong": setup.dropped,
                     "decontaminated": data.decontaminated,
                     # a tuning run says so: scored on its validation split, the test split withheld
                     **({"scored_on": data.scored_on, "test_withheld": data.withheld}
                        if data.scored_on != "test" else {})},
        "data_sources": data.sources, "wall_s": round(timing["wall"], 3),
        "time_s": time_breakdown(timing["wall"], timing["loop"], loop.periodic.seconds if loop.periodic else 0.0,
                                 timing["eval"]),
        "config": OmegaConf.to_container(cfg, resolve=True), "versions": versions(), "git_sha": git_sha(),
    }


def write_result(run_dir: Path, result: dict, rows: list[dict]) -> None:
    if rows:
        import pandas as pd

        atomic_write_text(run_dir / "metrics.csv", pd.DataFrame(rows).to_csv(index=False))
    atomic_write_json(run_dir / RESULT, result)
    drop_replaced_run(run_dir)


# ----------------------------------------------------------------------------------------------- the run
def train_and_evaluate(cfg: DictConfig, run_dir: Path, experiment: str | None) -> dict[str, Any]:
    prepare_config(cfg)
    done = finished_result(cfg, run_dir)
    if done is not None:
        return done
    prepare_run_dir(cfg, run_dir)
    started = start(cfg)
    setup = load(cfg)
    fit_to_length(cfg, setup)
    train_ds, eval_ds, streamed = build_datasets(cfg, setup)
    loop = build_loop(cfg, run_dir, setup, train_ds, eval_ds, streamed)
    checkpoint = resume(loop, run_dir, setup.model)
    loop_s, eval_started, final_eval = train(loop, checkpoint)
    if distributed.world_size() > 1:
        full_state = gather_sharded_model(loop, setup.model)  # FSDP: the whole model, on the main process
        if not distributed.leave_all_but_main():
            return {"status": "ok", "rank": distributed.rank()}  # the main process scores, exports and writes alone
        if full_state is not None:
            setup.model = unsharded_model(cfg, setup, full_state)
    metrics, provenance, scored_tasks = score(cfg, run_dir, setup, final_eval)
    eval_s = time.time() - eval_started
    delta_sv = delta_singular_values(setup.method, setup.model)
    save_final_state(setup.method, setup.model, run_dir)
    exported = export_run(setup.method, setup.model, setup.tokenizer, run_dir, cfg, metrics) if cfg.export else None
    rows = loop.metrics_log.rows()
    timing = {"wall": time.time() - started, "loop": loop_s, "eval": eval_s}
    result = build_result(cfg, experiment, setup, loop, metrics, provenance, scored_tasks, exported, delta_sv, rows,
                          timing)
    write_result(run_dir, result, rows)
    distributed.finish()
    print(f"result: {run_dir / RESULT}")
    return result
