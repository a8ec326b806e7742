"""One validation pass over a composed run config, before anything heavy: every value typed and ranged.

The trainer group's types come from `transformers.TrainingArguments` itself (its dataclass fields), so a key the
library adds or retypes is checked without a list kept here; what the types cannot say (a learning rate is
positive, a batch holds at least one example) is the small table of ranges below. Booleans are strict: `maybe`
is not true. A failure is a UserError: one line naming the key, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import types
import typing
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from .errors import UserError

BENCH_TRAINER_KEYS = ("nan_patience",)  # ours, not TrainingArguments'

# (test, what is valid) for the values whose type alone admits nonsense.
POSITIVE = (lambda v: v > 0, "a number > 0")
AT_LEAST_ONE = (lambda v: v >= 1, "an integer >= 1")
NON_NEGATIVE = (lambda v: v >= 0, "a number >= 0")
TRAINER_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "learning_rate": (lambda v: v >= 0, "a number >= 0 (0 freezes the adapters' own step)"),
    "num_train_epochs": POSITIVE,
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (use num_train_epochs) or an integer >= 1"),
    "per_device_train_batch_size": AT_LEAST_ONE,
    "per_device_eval_batch_size": AT_LEAST_ONE,
    "gradient_accumulation_steps": AT_LEAST_ONE,
    "warmup_steps": NON_NEGATIVE,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": NON_NEGATIVE,
    "logging_steps": POSITIVE,
    "eval_steps": POSITIVE,
    "save_steps": POSITIVE,
    "save_total_limit": AT_LEAST_ONE,
    "dataloader_num_workers": NON_NEGATIVE,
    "nan_patience": NON_NEGATIVE,
}

OPTIONAL_COUNT = (lambda v: v is None or (is_int(v) and v >= 1), "null or an integer >= 1")
TASK_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_length": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "num_train": OPTIONAL_COUNT,
    "num_eval": OPTIONAL_COUNT,
    "limit_train": OPTIONAL_COUNT,
    "limit_eval": OPTIONAL_COUNT,
    "num_dev": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "score_every": (lambda v: is_int(v) and v >= 0, "an integer >= 0 (0: never)"),
    # a tuning run's split (bench/tasks validation_split); absent from every other run's config
    "score_on": (lambda v: v in ("test", "validation"), "test or validation"),
    "num_validation": OPTIONAL_COUNT,
}
TOP_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "deterministic": (lambda v: isinstance(v, bool), "true or false"),
    "force": (lambda v: isinstance(v, bool), "true or false"),
    "wait_for_lock": (lambda v: isinstance(v, bool), "true or false"),
    "export": (lambda v: isinstance(v, bool), "true or false"),
    "smoke": (lambda v: isinstance(v, bool), "true or false"),
}


# Names that become part of a run directory's name (bench.resolvers.run_id) or select a config file: a value with
# '/', '..' or a NUL would write outside paths.runs_dir or read outside conf/.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
SAFE_NAME_VALID = "a name of letters, digits and _ - . + (no '/', no '..', no NUL)"
PATH_NAME_KEYS = ("method.name", "model.name", "task.name", "scale.name")


def is_safe_name(value: Any) -> bool:
    return isinstance(value, str) and SAFE_NAME.fullmatch(value) is not None and ".." not in value


def check_safe_name(key: str, value: Any) -> None:
    if not is_safe_name(value):
        _fail(key, value, SAFE_NAME_VALID)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@functools.cache
def training_argument_types() -> dict[str, Any]:
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainingArguments) if f.init and f.name in hints}


def _accepts(annotation: Any, value: Any) -> tuple[bool, str]:
    """Does ``value`` (as Hydra parsed it) fit the dataclass annotation? (fits, what is valid)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    valid, fits = [], False
    for option in options:
        if option is type(None):
            valid.append("null")
            fits |= value is None
        elif option is bool:
            valid.append("true or false")
            fits |= isinstance(value, bool)
        elif option is int:
            valid.append("an integer")
            fits |= is_int(value)
        elif option is float:
            valid.append("a number")
            fits |= _is_number(value)
        elif isinstance(option, type) and issubclass(option, enum.Enum):
            choices = [m.value for m in option]
            valid.append("one of " + ", ".join(map(str, choices)))
            fits |= value in choices
        elif option is str:
            if not any(isinstance(o, type) and issubclass(o, enum.Enum) for o in options):
                valid.append("a string")
                fits |= isinstance(value, str)
        else:  # dicts, lists and other structures: TrainingArguments itself checks them
            return True, ""
    return fits, " or ".join(valid)


def _fail(key: str, value: Any, valid: str) -> None:
    raise UserError(f"{key}={value!r} is not valid; valid: {valid}")


def validate_trainer(trainer: dict[str, Any]) -> None:
    types_ = training_argument_types()
    for key, value in trainer.items():
        if key not in types_ and key not in BENCH_TRAINER_KEYS:
            _fail(f"trainer.{key}", value, "a field of transformers.TrainingArguments or nan_patience")
        if key in types_:
            fits, valid = _accepts(types_[key], value)
            if not fits:
                _fail(f"trainer.{key}", value, valid)
        elif not is_int(value):
            _fail(f"trainer.{key}", value, "an integer >= 0")
        rule = TRAINER_RANGES.get(key)
        if rule and value is not None and _is_number(value) and not rule[0](value):
            _fail(f"trainer.{key}", value, rule[1])


def _check_rules(prefix: str, node: dict[str, Any], rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    for key, (test, valid) in rules.items():
        if key in node and not test(node[key]):
            _fail(prefix + key, node[key], valid)


def _refuse_checkpointing_where_the_method_cannot(cfg: DictConfig) -> None:
    """A method that cannot run checkpointed says why (AdapterMethod.no_checkpointing_because)."""
    from methods import METHODS

    name = OmegaConf.select(cfg, "method.name")
    reason = getattr(METHODS.get(name), "no_checkpointing_because", "")
    if reason and OmegaConf.select(cfg, "trainer.gradient_checkpointing"):
        _fail("trainer.gradient_checkpointing", True, f"false with method={name} ({reason})")


def validate_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first bad value of the composed run config."""
    def section(name: str) -> dict[str, Any]:
        node = OmegaConf.select(cfg, name)
        return OmegaConf.to_container(node, resolve=False) if node is not None else {}

    for key in PATH_NAME_KEYS:
        check_safe_name(key, OmegaConf.select(cfg, key, throw_on_resolution_failure=False))
    top = {k: cfg.get(k) for k in TOP_RULES if k in cfg}
    _check_rules("", top, TOP_RULES)
    validate_trainer(OmegaConf.to_container(cfg.trainer, resolve=True))
    _refuse_checkpointing_where_the_method_cannot(cfg)
    _check_rules("task.", section("task"), TASK_RULES)
    # Interpolations that need the running job (${hydra:...}) stay unresolved here and are checked by the run.
    runs_dir = OmegaConf.select(cfg, "paths.runs_dir", throw_on_missing=False, throw_on_resolution_failure=False)
    if runs_dir is not None and not str(runs_dir).strip():
        _fail("paths.runs_dir", runs_dir, "a directory path (an empty value usually means an unset variable)")
