"""The whole composed config is typed and ranged before anything heavy: one line naming key, value and what is valid."""

from __future__ import annotations

import pytest

from bench.cli import preflight
from bench.errors import UserError
from bench.validate import training_argument_types, validate_trainer

BAD = [  # (overrides, words the one line must name)
    (["trainer.learning_rate=-1"], ["trainer.learning_rate=-1", "valid: a number >= 0"]),
    (["trainer.learning_rate=abc"], ["trainer.learning_rate='abc'", "a number"]),
    (["trainer.max_steps=0"], ["trainer.max_steps=0", "-1 (use num_train_epochs)"]),
    (["trainer.per_device_train_batch_size=0"], ["per_device_train_batch_size=0", "an integer >= 1"]),
    (["trainer.gradient_accumulation_steps=0"], ["gradient_accumulation_steps=0", "an integer >= 1"]),
    (["trainer.nan_patience=abc"], ["trainer.nan_patience='abc'", "an integer"]),
    (["trainer.bf16=maybe"], ["trainer.bf16='maybe'", "true or false"]),
    (["trainer.lr_scheduler_type=cosin"], ["lr_scheduler_type='cosin'", "cosine"]),
    (["trainer.eval_strategy=sometimes"], ["eval_strategy='sometimes'", "steps"]),
    (["+trainer.learning_rat=1"], ["trainer.learning_rat=1", "TrainingArguments"]),
    (["seed=abc"], ["seed='abc'", "an integer"]),
    (["seed=-1"], ["seed=-1", "an integer in [0, 2**32)"]),
    (["deterministic=maybe"], ["deterministic='maybe'", "true or false"]),
    (["force=maybe"], ["force='maybe'", "true or false"]),
    (["task.max_length=0"], ["task.max_length=0", "an integer >= 1"]),
    (["task.num_eval=0"], ["task.num_eval=0", "null or an integer >= 1"]),
    (["paths.runs_dir="], ["paths.runs_dir=", "unset variable"]),
    # a size mismatch mid-step otherwise (the checkpointed layers drop the prefix's cache; make smoke found it)
    (["method=prefix", "+trainer.gradient_checkpointing=true"], ["trainer.gradient_checkpointing=True", "method=prefix"]),
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_value_is_one_line_naming_key_value_and_valid_choices(overrides, words):
    with pytest.raises(UserError) as err:
        preflight(overrides)
    line = str(err.value)
    assert "\n" not in line and "valid:" in line and all(w in line for w in words), line


def test_every_shipped_default_passes():
    preflight([])
    preflight(["method=salora", "scale=small", "experiment=salora_density_small"])
    # the 7B adaptation checkpoints every arm but prefix-tuning's (conf/arm/prefix.yaml)
    preflight(["experiment=compare_adapt", "scale=paper", "arm=prefix"])


def test_trainer_types_come_from_training_arguments():
    types_ = training_argument_types()
    assert types_["learning_rate"] is float and types_["bf16"] is bool
    validate_trainer({"learning_rate": 1, "max_steps": -1, "save_total_limit": None, "eval_steps": None})
