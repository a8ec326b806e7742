"""One run, start to finish: load → apply the method → train (resuming if a checkpoint exists) → evaluate →
result.json. Everything written goes through ``records``; the run dir comes from Hydra."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments, set_seed

from . import distributed
from .data import Collator, PackedStream, encode, fit_examples
from .errors import DiskFull, UserError, is_disk_full
from .evaluate import evaluate_final, scorer_for
from .export import export_run, save_final_state
from .models import count_parameters, load_model, load_tokenizer
from .records import (RESULT, MetricsLog, RunRefused, atomic_write_json, atomic_write_text, claim_run_dir, completed_result,
                      drop_replaced_run, git_sha, run_lock, set_aside_previous_run, versions, write_run_config)
from .resolvers import run_id, run_identity
from .run_miniature import apply_smoke, smoke_eval
from .tasks import get_spec, load_task_data
from .tasks.readers import HubStream
from .trainer import (AdapterTrainer, BenchState, FlopsCounter, MethodHooks, MetricsWriter, PeriodicScore,
                      last_complete_checkpoint)
from .validate import BENCH_TRAINER_KEYS, validate_config


def check_environment(cfg: DictConfig) -> None:
    if cfg.scale.require_gpu and not torch.cuda.is_available():
        where = cfg.model.path if cfg.model.source == "hub" else cfg.model.name
        raise UserError(f"scale={cfg.scale.name} needs a CUDA GPU and hub access (model {where!r}, task "
                        f"{cfg.task.name!r}); no CUDA device found: use scale=tiny for an offline CPU run")


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
    distributed.start()
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


def train_and_evaluate(cfg: DictConfig, run_dir: Path, experiment: str | None) -> dict[str, Any]:
    if cfg.get("smoke"):
        apply_smoke(cfg)  # the paper-scale job on a miniature of its model and the local sample data
    distributed.split_global_batch(cfg)  # W processes: the same global batch (bench/distributed.py)
    run_dir.mkdir(parents=True, exist_ok=True)
    done = completed_result(run_dir)
    if done is not None and not cfg.force:
        print(f"skip: {run_dir / RESULT} exists (force=true retrains)")
        return done
    if distributed.is_main():  # one writer; the others wait for the run directory to be ready
        if cfg.force:
            set_aside_previous_run(run_dir)  # from step 0, never continuing a finished run; old one kept until the end
        write_run_config(cfg, run_dir)
    distributed.barrier()
    check_environment(cfg)
    if cfg.logger.get("wandb_mode"):
        os.environ.setdefault("WANDB_MODE", cfg.logger.wandb_mode)
    started = time.time()
    set_seed(cfg.seed)
    torch.use_deterministic_algorithms(bool(cfg.deterministic), warn_only=True)

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

    max_length = cfg.task.max_length
    fitted, longest, dropped = fit_examples(cfg.task.name, spec.kind, {"train": data.train, "dev": data.dev, "eval": data.eval},
                                            tokenizer, max_length, cfg.task.get("overlong", "error"))
    data.train, data.dev, data.eval = fitted["train"], fitted["dev"], fitted["eval"]
    for name, (extra_spec, rows, source) in data.extra_eval.items():  # no task.eval_tasks example is cut either
        kept, extra_longest, extra_dropped = fit_examples(name, extra_spec.kind, {f"eval:{name}": rows}, tokenizer,
                                                          max_length, cfg.task.get("overlong", "error"))
        data.extra_eval[name] = (extra_spec, kept[f"eval:{name}"], source)
        longest, dropped = max(longest, extra_longest), {**dropped, **extra_dropped}
    if cfg.get("smoke"):
        data.dev, data.eval = smoke_eval(data.dev), smoke_eval(data.eval)
        data.extra_eval = {n: (t, smoke_eval(rows), src) for n, (t, rows, src) in data.extra_eval.items()}
    if not data.eval and dropped.get("eval"):
        raise UserError(f"task={cfg.task.name}: all {dropped['eval']} evaluation examples are longer than "
                        f"task.max_length={max_length} and were dropped (task.overlong=drop); raise task.max_length")
    streamed = isinstance(data.train, HubStream)
    if streamed and (cfg.trainer.get("max_steps") or -1) <= 0:
        raise UserError(f"task={cfg.task.name} streams its training corpus ({data.sources['train']}), which has no "
                        f"length: set trainer.max_steps (now {cfg.trainer.get('max_steps')}); valid: an integer >= 1")
    train_ds = (PackedStream(data.train, tokenizer, max_length) if streamed
                else Dataset.from_list(encode(spec.kind, data.train, tokenizer, max_length)))
    eval_examples = data.dev or data.eval
    eval_ds = Dataset.from_list(encode(spec.kind, eval_examples, tokenizer, max_length)) if eval_examples else None
    if not streamed and len(train_ds) == 0:
        raise UserError(f"task={cfg.task.name}: no training examples after loading {data.sources['train']!r}")

    metrics_log = MetricsLog(run_dir)
    _, scorer = scorer_for(spec)
    eval_batch = cfg.trainer.per_device_eval_batch_size

    def score(m):
        return scorer(m, tokenizer, data.eval, max_length, eval_batch) if scorer else {}

    flops = FlopsCounter()
    bench_state = BenchState(method, flops)
    callbacks = [MethodHooks(method), flops, MetricsWriter(metrics_log, method, cfg.trainer.nan_patience), bench_state]
    periodic = PeriodicScore(cfg.task.score_every, score, metrics_log) if cfg.task.get("score_every") and scorer else None
    if periodic:
        callbacks.append(periodic)
    checkpoint_dir = run_dir / "checkpoints"
    trainer = AdapterTrainer(
        model=model, args=training_arguments(cfg, checkpoint_dir, eval_ds is not None), train_dataset=train_ds,
        eval_dataset=eval_ds, data_collator=Collator(tokenizer.pad_token_id), processing_class=tokenizer,
        callbacks=callbacks, method=method, task_kind=spec.kind,
    )
    resume = distributed.main_first(lambda: last_complete_checkpoint(checkpoint_dir))  # it may set a damaged one aside
    if resume is not None:
        step = bench_state.restore(resume, model)
        if distributed.is_main():
            metrics_log.truncate_after(step)
        print(f"resume: {resume} (step {step})")
    elif metrics_log.path.exists() and distributed.is_main():
        metrics_log.path.unlink()  # a previous attempt died before its first checkpoint
    loop_started = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    loop_s = time.time() - loop_started
    eval_started = time.time()

    # Decided from the Trainer's own history, which every process holds alike (evaluate() is collective).
    final_eval = [h["eval_loss"] for h in trainer.state.log_history
                  if "eval_loss" in h and h.get("step") == trainer.state.global_step]
    if not final_eval and eval_ds is not None:
        final_eval = [trainer.evaluate()["eval_loss"]]
    if not distributed.is_main():
        distributed.finish()  # rank 0 scores, exports and writes the result
        return {"status": "ok", "rank": distributed.rank()}
    rows = metrics_log.rows()
    metrics: dict[str, Any] = {}
    if final_eval:
        metrics["eval_loss"] = final_eval[-1]
        if spec.kind == "lm":
            metrics["perplexity"] = float(torch.exp(torch.tensor(final_eval[-1])))
    final_metrics, provenance = evaluate_final(spec, model, tokenizer, data.eval, run_dir,
                                               use_builtin=not (cfg.scale.local_data or data.eval_named),
                                               max_length=max_length, batch_size=eval_batch)
    metrics.update(final_metrics)
    scored_tasks = {}
    for name, (extra_spec, rows, source) in data.extra_eval.items():
        extra_metrics, extra_provenance = evaluate_final(extra_spec, model, tokenizer, rows, run_dir,
                                                         use_builtin=not cfg.scale.local_data, max_length=max_length,
                                                         batch_size=eval_batch)
        metrics.update({f"{name}/{k}": v for k, v in extra_metrics.items()})
        scored_tasks[name] = {"n": len(rows), "source": source, **extra_provenance}
    metrics.update(method.final_metrics(model))
    eval_s = time.time() - eval_started
    delta_sv = delta_singular_values(method, model)
    save_final_state(method, model, run_dir)
    exported = export_run(method, model, tokenizer, run_dir, cfg, metrics) if cfg.export else None
    wall_s = time.time() - started
    result = {
        "experiment": experiment, "method": method.name, "model": cfg.model.name, "task": cfg.task.name, "rank": cfg.method.r,
        "seed": cfg.seed, "scale": cfg.scale.name, "smoke": bool(cfg.get("smoke")), "status": "ok", "metrics": metrics,
        "headline_metric": spec.metric, "scorer": provenance.get("scorer", "trainer:eval_loss"),
        "lm_eval": provenance.get("lm_eval"), "eval_tasks": scored_tasks, "export": exported, "delta_sv_gt_0.1": delta_sv,
        "train_loss": [[r["step"], r.get("task_loss", r["loss"])] for r in rows if "loss" in r],
        "eval_loss": [[r["step"], r["eval_loss"]] for r in rows if "eval_loss" in r],
        "trainable_params": trainable, "total_params": total, "train_flops": flops.flops,
        # HF's own count (6 × parameters × tokens, every parameter as if trained), what COLA's Table 4 reads off the
        # trainer state; train_flops above is the suite's, which sees what an adapter's rank saves.
        "trainer_flos": float(trainer.state.total_flos),
        "steps": trainer.state.global_step, "world_size": distributed.world_size(),
        "examples": {"train": "streamed" if streamed else len(data.train), "eval": len(data.eval), "longest_tokens": longest,
                     "dropped_overlong": dropped, "decontaminated": data.decontaminated,
                     # a tuning run says so: scored on its validation split, the test split withheld
                     **({"scored_on": data.scored_on, "test_withheld": data.withheld}
                        if data.scored_on != "test" else {})},
        "data_sources": data.sources, "wall_s": round(wall_s, 3),
        "time_s": time_breakdown(wall_s, loop_s, periodic.seconds if periodic else 0.0, eval_s),
        "config": OmegaConf.to_container(cfg, resolve=True), "versions": versions(), "git_sha": git_sha(),
    }
    if rows:
        import pandas as pd

        atomic_write_text(run_dir / "metrics.csv", pd.DataFrame(rows).to_csv(index=False))
    atomic_write_json(run_dir / RESULT, result)
    drop_replaced_run(run_dir)
    distributed.finish()
    print(f"result: {run_dir / RESULT}")
    return result
