"""Smoke runs of the paper scale: every job of a paper-scale sweep, end to end, on a CPU.

``python -m bench.train -m experiment=<paper-scale experiment> scale=paper smoke=true`` runs each job with the hub
model replaced by a randomly initialised miniature of the same architecture (same ``model_type``, so the same
module names and target matching; 2 layers, width 64; stories260K's local tokenizer) and the hub datasets by the
local sample files read through the same loaders and schemas. Everything else is the paper's configuration: the
method and its targets, the trainer path, the scorer, export. What a CPU minute cannot hold is cut, and said here:
2 training steps; at most 4 sequences per device and 2 accumulation steps (the accumulation path still runs);
8 evaluation examples; fp32. The suite's own scorers stand in for lm-eval's hub tasks, as at the CPU tiers.
The run dir ends in ``_smoke``, ``result.json`` says ``"smoke": true``, and the report never reads it.

``python -m bench.smoke [PAPER ...]`` (``make smoke``) runs every paper-scale experiment of the named papers (all by
default, and ``compare``: bench.compare's paper-scale grid) this way, covering every model × task × method combination of each sweep with one value of every other
swept key (one seed, one rank, one grid point), and prints the number of jobs per paper. Exit 1 if any failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import UserError, report_and_exit

# The miniature of each architecture the papers use: 2 layers, width 64 (wider where the rank needs it), 4 heads
# (as many key/value heads: a rank must fit k_proj and v_proj too).
MINIATURES = {
    "llama": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "max_position_embeddings": 1024},
    "mistral": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 4, "max_position_embeddings": 1024},
    "gemma": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "head_dim": 16, "max_position_embeddings": 1024},
    "opt": {"hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "word_embed_proj_dim": 64, "max_position_embeddings": 1024},
    "roberta": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "max_position_embeddings": 1026, "type_vocab_size": 1},
}
LOCAL_TOKENIZER = "models/stories260K"   # under paths.shared_data
MINIATURE_POSITIONS = 1024
SMOKE_TRAINER = {"max_steps": 2, "save_steps": 2, "eval_steps": 2, "logging_steps": 1, "bf16": False, "fp16": False}
MAX_DEVICE_BATCH, MAX_ACCUMULATION, EVAL_EXAMPLES = 4, 2, 8
# Sweep keys whose every value a smoke run covers; any other swept key runs at its first value.
COVERED_KEYS = ("model", "task", "method", "arm")


def model_type_of(model_cfg: DictConfig) -> str:
    model_type = OmegaConf.select(model_cfg, "config.model_type") or model_cfg.get("model_type")
    if model_type not in MINIATURES:
        raise UserError(f"smoke: model={model_cfg.name} has model_type={model_type!r}; valid: {sorted(MINIATURES)} "
                        "(set model_type in its conf/model file)")
    return model_type


def miniature_shape(model_type: str, method_cfg: DictConfig) -> dict:
    """Width 64, or the paper's rank rounded up to a multiple of 64 where it is larger (r 256 needs 256-wide layers)."""
    ranks = [method_cfg.get("r") or 1, *(method_cfg.get("ranks") or [])]
    width = 64 * -(-max(ranks) // 64)
    shape = dict(MINIATURES[model_type])
    scale = width // 64
    for key in ("hidden_size", "word_embed_proj_dim"):
        if key in shape:
            shape[key] = width
    for key in ("intermediate_size", "ffn_dim"):
        if key in shape:
            shape[key] *= scale
    if "head_dim" in shape:
        shape["head_dim"] = width // shape["num_attention_heads"]
    return shape


def apply_smoke(cfg: DictConfig) -> None:
    """Turn a composed paper-scale job into its smoke run, in place."""
    model_type = model_type_of(cfg.model)
    with open_dict(cfg):
        cfg.model.source, cfg.model.path, cfg.model.dtype = "config", None, "float32"
        cfg.model.tokenizer = f"{cfg.paths.shared_data}/{LOCAL_TOKENIZER}"
        cfg.model.config = {"model_type": model_type, "vocab_size": 512, **miniature_shape(model_type, cfg.method)}
        cfg.scale.local_data, cfg.scale.require_gpu = True, False
        for key, value in SMOKE_TRAINER.items():
            cfg.trainer[key] = value
        cfg.trainer.per_device_train_batch_size = min(cfg.trainer.per_device_train_batch_size, MAX_DEVICE_BATCH)
        cfg.trainer.per_device_eval_batch_size = min(cfg.trainer.per_device_eval_batch_size, MAX_DEVICE_BATCH)
        cfg.trainer.gradient_accumulation_steps = min(cfg.trainer.gradient_accumulation_steps, MAX_ACCUMULATION)
        cfg.task.num_eval = 8 * EVAL_EXAMPLES   # cut to EVAL_EXAMPLES after over-long ones are dropped (smoke_eval)
        cfg.task.limit_eval = 8 * EVAL_EXAMPLES
        cfg.task.limit_train = 64
        cfg.task.overlong = "drop"  # the sample files hold texts longer than the miniature's window
        # stories260K's 512-token vocabulary splits text about twice as finely as the papers' 32k-50k ones: the
        # same texts need twice the positions (MultiRC passages exceed 512 of its tokens).
        cfg.task.max_length = min(2 * cfg.task.max_length, MINIATURE_POSITIONS)
        if cfg.task.get("score_every"):
            cfg.task.score_every = 1


def smoke_eval(examples: list[dict]) -> list[dict]:
    return examples[:EVAL_EXAMPLES]


# ------------------------------------------------------------------------------------------- make smoke
def sweep_overrides(experiment: str, fixed: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """The experiment's sweep with every covered key whole and every other swept key at its first value; the job count.
    ``fixed`` overrides (key=value) replace a swept key."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from . import resolvers  # noqa: F401

    from .paths import CONF_DIR as conf
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "scale=paper"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {})
    parser = OverridesParser.create()
    overrides, jobs = [], 1
    fixed_keys = {item.split("=", 1)[0] for item in fixed}
    overrides.extend(fixed)
    for key, value in params.items():
        if key in fixed_keys:
            continue
        override = parser.parse_overrides([f"{key}={value}"])[0]
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(value)]
        if key not in COVERED_KEYS:
            values = values[:1]
        jobs *= len(values)
        overrides.append(f"{key}={','.join(values)}")
    return overrides, jobs


def smoke_jobs(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(paper-scale experiment, fixed overrides) of a paper, or of bench.compare's grid (its reference arm too)."""
    from . import compare
    from .papers import PAPERS, load

    if name == compare.NAME:
        return [(exp, fixed) for exp in compare.experiments("paper") for fixed in compare.SWEEPS]
    if name not in PAPERS:
        raise UserError(f"smoke: {name!r}; valid: {', '.join((*PAPERS, compare.NAME))}")
    return [(exp, ()) for exp in load(name).experiment_files("paper")]


def main(argv: list[str] | None = None) -> int:
    from . import compare
    from .papers import PAPERS

    from .launch import launch_options

    args = sys.argv[1:] if argv is None else argv
    try:
        options = [a for a in args if a.startswith("-")]
        if options:
            raise UserError(f"option {options[0]!r} is not valid; usage: python -m bench.smoke [PAPER ...] "
                            f"(PAPER one of {', '.join((*PAPERS, compare.NAME))})")
        names = args or [*PAPERS, compare.NAME]
        plans = {name: smoke_jobs(name) for name in names}
        jobs_at_once = launch_options(None, None, None, os.environ.get("JOBS")).jobs
    except UserError as err:
        report_and_exit(err)
    runs_dir = Path("runs") / "smoke"
    failed, counts = [], {}
    started = time.time()
    for name, plan in plans.items():
        counts[name] = 0
        for experiment, fixed in plan:
            overrides, jobs = sweep_overrides(experiment, fixed)
            counts[name] += jobs
            print(f"smoke: {name} / {experiment} {' '.join(fixed)}: {jobs} job(s)", flush=True)
            # Two jobs at a time, one thread each (as the CPU tiers); force: a smoke checks the code as it is now.
            proc = subprocess.run([sys.executable, "-m", "bench.train", "-m", f"experiment={experiment}", "scale=paper",
                                   "smoke=true", "force=true", f"paths.runs_dir={runs_dir}", "hydra/launcher=joblib",
                                   f"hydra.launcher.n_jobs={jobs_at_once}", *overrides],
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                failed.append(" ".join((experiment, *fixed)))
    total = sum(counts.values())
    print("smoke: " + ", ".join(f"{paper} {n} jobs" for paper, n in counts.items())
          + f"; {total} in all, {time.time() - started:.0f} s; failed experiments: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
