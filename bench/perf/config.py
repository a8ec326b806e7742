"""`bench.perf`'s settings: its defaults, its built-in model and the one key=value parser its commands share.

Not Hydra: a benchmark setting is no part of a run's identity, and the commands keep their one-line errors naming
the key, the value and what is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import UserError
from ..records import require_writable_dir
from ..validate import is_int

DEFAULTS = OmegaConf.create({
    "model": "perf_llama",          # perf_llama (built in) or any conf/model name (random weights of its shape)
    # 40 repetitions: enough pairs for each median ratio's 95% interval to resolve the goals' limits
    "batch": 4, "seq_len": 128, "ranks": [8, 64], "reps": 40, "warmup": 3,
    "device": "auto", "dtype": "float32", "epoch_steps": 1000, "restart_every": 100,
    "targets": None,                # default: the model config's target_modules
    "memory": True, "out_dir": "results", "quick": False,
})
QUICK_RUN = {"warmup": 1, "batch": 2, "seq_len": 16, "ranks": [2, 4]}  # quick=true: seconds, not minutes (reps <= 3)
PERF_LLAMA = {"model_type": "llama", "vocab_size": 2048, "hidden_size": 384, "intermediate_size": 1024,
              "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8, "max_position_embeddings": 512}
QUICK = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
         "num_key_value_heads": 4, "vocab_size": 256}
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ENCODERS = ("roberta", "bert")


def parse_dotlist(argv: list[str], defaults: DictConfig, prog: str,
                  refuse: Callable[[str, str | None], str]) -> DictConfig:
    """``key=value`` arguments merged over ``defaults``. ``refuse(arg, key)`` words the one-line error for an
    argument that is not key=value (``key`` None) or whose key has no default."""
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg:
            raise UserError(refuse(arg, None))
        if key not in defaults:
            raise UserError(refuse(arg, key))
    try:
        return OmegaConf.merge(defaults, OmegaConf.from_dotlist(argv))
    except Exception as err:  # an unparsable value, e.g. ranks=[8
        raise UserError(f"{prog}: {str(err).splitlines()[0]}; valid: key=value with values like the defaults'") from err


def _refuse(arg: str, key: str | None) -> str:
    if key is None:
        return f"{arg!r} is not key=value; valid keys: {', '.join(DEFAULTS)} (e.g. quick=true)"
    return f"perf.{key} is not a perf setting; valid: {', '.join(DEFAULTS)}"


def _model_names() -> list[str]:
    from ..paths import CONF_DIR

    conf_dir = CONF_DIR / "model"
    return ["perf_llama", *sorted(p.stem for p in conf_dir.glob("*.yaml"))]


def parse_args(argv: list[str]) -> DictConfig:
    """key=value arguments against DEFAULTS, every value typed and ranged: a UserError names the first bad one."""
    cfg = parse_dotlist([a.removeprefix("perf.") for a in argv], DEFAULTS, "perf", _refuse)

    def bad(key: str, valid: str):
        raise UserError(f"perf.{key}={cfg[key]!r} is not valid; valid: {valid}")

    if cfg.model not in _model_names():
        bad("model", ", ".join(_model_names()))
    for key in ("batch", "seq_len", "reps", "epoch_steps", "restart_every"):
        if not is_int(cfg[key]) or cfg[key] < 1:
            bad(key, "an integer >= 1")
    if not is_int(cfg.warmup) or cfg.warmup < 0:
        bad("warmup", "an integer >= 0")
    ranks = cfg.ranks if OmegaConf.is_list(cfg.ranks) else [cfg.ranks]
    if not ranks or any(not is_int(r) or r < 1 for r in ranks):
        bad("ranks", "a list of integers >= 1, e.g. [8,64]")
    if cfg.dtype not in ("float32", "bfloat16", "float16"):
        bad("dtype", "float32, bfloat16, float16")
    if cfg.device not in ("auto", "cpu") and not str(cfg.device).startswith("cuda"):
        bad("device", "auto, cpu, cuda, cuda:N")
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        bad("device", "auto or cpu (no CUDA device here)")
    for key in ("memory", "quick"):
        if not isinstance(cfg[key], bool):
            bad(key, "true or false")
    require_writable_dir(Path(cfg.out_dir), "perf.out_dir")  # before minutes of benchmarking, not after
    return cfg


def model_config(cfg) -> tuple[Any, list[str]]:
    """The transformers config of ``cfg.model`` (its shape only; weights stay random) and the targets to adapt."""
    from transformers import AutoConfig

    if cfg.model == "perf_llama":
        spec = {**PERF_LLAMA, **(QUICK if cfg.quick else {})}
        return AutoConfig.for_model(**spec), list(cfg.targets or LLAMA_TARGETS)
    from .. import resolvers  # noqa: F401  (${cwd:} in the paths the model file reads)
    from ..paths import CONF_DIR as conf_root

    # A model file reads ${paths.shared_data}: give it the paths group, as a composed run would.
    tree = OmegaConf.merge({"paths": OmegaConf.load(conf_root / "paths" / "default.yaml")},
                           {"model": OmegaConf.load(conf_root / "model" / f"{cfg.model}.yaml")})
    model_cfg = tree.model
    targets = cfg.targets or model_cfg.target_modules
    targets = targets if isinstance(targets, str) else list(targets)  # a regex stays one string (peft's rule)
    if model_cfg.source == "config":
        return AutoConfig.for_model(**OmegaConf.to_container(model_cfg.config)), targets
    if model_cfg.get("shape"):  # a hub model's shape written in its conf file: no download
        return AutoConfig.for_model(model_cfg.model_type, **OmegaConf.to_container(model_cfg.shape)), targets
    return AutoConfig.from_pretrained(model_cfg.path), targets  # the shape only; weights stay random
