"""A paper-scale job as a smoke run: its model in miniature and the local sample data, end to end on a CPU.

``python -m bench.train -m experiment=<paper-scale experiment> scale=paper smoke=true`` runs each job with the hub
model replaced by a randomly initialised miniature of the same architecture (same ``model_type``, so the same
module names and target matching; 2 layers, width 64; stories260K's local tokenizer) and the hub datasets by the
local sample files read through the same loaders and schemas. Everything else is the paper's configuration: the
method and its targets, the trainer path, the scorer, export. What a CPU minute cannot hold is cut, and said here:
2 training steps; at most 4 sequences per device and 2 accumulation steps (the accumulation path still runs);
8 evaluation examples; fp32. The suite's own scorers stand in for lm-eval's hub tasks, as at the CPU tiers.
The run dir ends in ``_smoke``, ``result.json`` says ``"smoke": true``, and the report never reads it.

``make smoke`` (bench/sweep/smoke.py) launches these jobs; this module is what a run needs of them.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from ..errors import UserError
from .distributed import world_size

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
        if cfg.trainer.get("fsdp") and world_size() == 1:  # one process has nothing to shard (tests/test_fsdp.py: two)
            checkpointing = (cfg.trainer.get("fsdp_config") or {}).get("activation_checkpointing")
            cfg.trainer.fsdp, cfg.trainer.fsdp_config = "", None   # its activation checkpointing still runs here
            cfg.trainer.gradient_checkpointing = bool(checkpointing or cfg.trainer.get("gradient_checkpointing"))
        cfg.trainer.per_device_train_batch_size = min(cfg.trainer.per_device_train_batch_size, MAX_DEVICE_BATCH)
        cfg.trainer.per_device_eval_batch_size = min(cfg.trainer.per_device_eval_batch_size, MAX_DEVICE_BATCH)
        cfg.trainer.gradient_accumulation_steps = min(cfg.trainer.gradient_accumulation_steps, MAX_ACCUMULATION)
        cfg.task.num_eval = 8 * EVAL_EXAMPLES   # cut to EVAL_EXAMPLES after over-long ones are dropped (smoke_eval)
        cfg.task.limit_eval = 8 * EVAL_EXAMPLES
        cfg.task.limit_train = 64
        cfg.task.overlong = "drop"  # the sample files hold texts longer than the miniature's window
        # stories260K's 512-token vocabulary splits text about twice as finely as the papers' 32k-50k ones: the
        # same texts need twice the positions (MultiRC passages exceed 512 of its tokens).
        cfg.task.max_length = miniature_length(cfg.task.max_length)
        if cfg.task.get("score_every"):
            cfg.task.score_every = 1


def miniature_length(max_length: int) -> int:
    """stories260K's 512-token vocabulary splits text about twice as finely as the papers' 32k-50k ones: a task's
    length in the miniature's tokens."""
    return min(2 * max_length, MINIATURE_POSITIONS)


def smoke_eval(examples: list[dict]) -> list[dict]:
    return examples[:EVAL_EXAMPLES]
