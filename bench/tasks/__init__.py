"""Task registry and data loading: hub datasets at paper scale, local files on request, generators for tiny scale.

    from bench.tasks import TASKS, load_task_data
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ..errors import UserError
from ..paths import CONF_DIR
from . import adaptllm, commonsense, glue, instruct, mmlu, pretrain, superglue, uuid_pairs  # noqa: F401  (registration)
from .readers import HubStream, LocalStream, Stream, read_hub, read_local, require_fields
from .corpus import corpus_records, source_records
from .registry import TASKS, TaskSpec, evaluation_only, shared_text
from .superglue import mezo_split

ROLE_ALIASES = {"train": ("train",), "eval": ("eval", "test", "validation", "val", "dev")}
STREAM_EVAL_RECORDS = 1000   # a streamed task's held-out slice when task.num_eval is null: its eval split's first 1,000


def get_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise UserError(f"task.name={name!r}; valid: {sorted(TASKS)}")
    return TASKS[name]


@dataclass
class TaskData:
    spec: TaskSpec
    train: list[dict] | Stream   # a stream for a streamed corpus (TaskSpec.stream), from the hub or local shards
    dev: list[dict]
    eval: list[dict]
    sources: dict[str, str] = field(default_factory=dict)
    eval_named: bool = False  # the eval split is a file the user named (task.data_files): evaluated whole
    decontaminated: int = 0   # training examples removed because their text is also an evaluation example's
    # task.eval_tasks: other tasks' evaluation splits, scored after training (OLoRA trains once on a pooled
    # collection and reports six benchmarks): name -> (spec, examples, source)
    extra_eval: dict[str, tuple[TaskSpec, list[dict], str]] = field(default_factory=dict)
    scored_on: str = "test"   # "validation": a tuning run, scored on a split of its training data (SCORE_ON)
    withheld: int = 0         # test examples a validation run loaded only to keep them out of its training data


def _file_for(files: dict | None, role: str, group: str) -> tuple[str, str | list[str]] | None:
    """(config key, path or list of paths) of the file(s) serving ``role``, if any. A list is one pooled split
    (LLM-Adapters' commonsense collection pools each task's train file)."""
    for key in ROLE_ALIASES[role]:
        if files and files.get(key):
            value = files[key]
            return f"task.{group}.{key}", (str(value) if isinstance(value, (str, Path)) else [str(v) for v in value])
    return None


def _read_files(spec: TaskSpec, key: str, paths: str | list[str], task_cfg: Any) -> list[dict]:
    rows: list[dict] = []
    for path in [paths] if isinstance(paths, str) else paths:
        part = read_local(path, task_cfg.get("format"), header=spec.local_header, columns=spec.local_columns,
                          key=key, fields=spec.local_fields)
        require_fields(part, spec.local_fields, f"{key}={path}")
        rows += part
    return rows


def _records(spec: TaskSpec, role: str, task_cfg: Any, use_local: bool, seed: int) -> tuple[list[dict], str]:
    found = _file_for(task_cfg.get("data_files"), role, "data_files") or (
        _file_for(task_cfg.get("local_files"), role, "local_files") if use_local else None)
    if not found and use_local and task_cfg.get("local_corpus"):
        root = str(task_cfg.local_corpus)
        if not Path(root).is_dir():
            raise UserError(f"task.local_corpus={root!r} is not a directory; expected the shared data folder")
        rows = corpus_records(role, root)
        return [spec.convert_local(r) for r in rows], f"corpus:{root}:{role}"
    if not found and use_local and task_cfg.get("local_sources"):
        root = str(task_cfg.local_sources)
        if not Path(root).is_dir():
            raise UserError(f"task.local_sources={root!r} is not a directory; expected the shared data folder")
        return [spec.convert_local(r) for r in source_records(role, root)], f"glue-sources:{root}:{role}"
    if found and spec.stream and role == "train":   # a streamed corpus's local shards are streamed too, never read whole
        key, path = found
        return LocalStream(path, task_cfg.get("format"), spec.convert_hub), f"local-stream:{path}"
    if found:
        key, path = found
        rows = _read_files(spec, key, path, task_cfg)
        if spec.expand:
            rows = [r for row in rows for r in spec.expand(row)]
        convert, source = spec.convert_local, (path if isinstance(path, str) else "+".join(path))
    elif spec.generator is not None and (use_local or spec.hub_dataset is None):
        n = (task_cfg.num_train if role == "train" else task_cfg.num_eval) or 1000
        rows, convert, source = spec.generator(role, n, seed), spec.convert_local, f"generator(seed={seed})"
    elif use_local:
        raise UserError(f"task {spec.name!r} has no local file for its {role} split at this scale; "
                        f"set task.data_files.{role}=PATH (json, jsonl, csv, tsv, parquet)")
    else:
        if spec.unavailable:
            raise UserError(f"task {spec.name!r}: no public data ({spec.unavailable}); point task.data_files.train=PATH "
                            "and task.data_files.test=PATH at a local copy")
        split = spec.hub_splits.get(role)
        if split is None:
            raise UserError(f"task {spec.name!r} has no {role} split on the hub; set task.data_files.{role}=PATH")
        if spec.stream:
            stream = HubStream(spec.hub_dataset, spec.hub_config, split, spec.convert_hub)
            source = f"hub-stream:{spec.hub_dataset}/{spec.hub_config or ''}:{split}"
            return (stream if role == "train" else stream.take(task_cfg.num_eval or STREAM_EVAL_RECORDS)), source
        configs = spec.hub_config if isinstance(spec.hub_config, tuple) else (spec.hub_config,)
        rows = [row for config in configs for row in read_hub(spec.hub_dataset, config, split)]
        require_fields(rows, spec.hub_fields, f"{spec.hub_dataset}:{split}")
        if spec.expand:
            rows = [r for row in rows for r in spec.expand(row)]
        convert, source = spec.convert_hub, f"hub:{spec.hub_dataset}/{'+'.join(c or '' for c in configs)}:{split}"
    try:
        examples = [convert(r) for r in rows]
        if role == "eval" and spec.shots is not None:
            examples = spec.shots(examples, _shot_pool(spec, examples, source))
        return examples, source
    except (KeyError, ValueError, TypeError) as err:
        raise UserError(f"data for task {spec.name!r} from {source!r} does not fit its schema "
                        f"(expected fields {list(spec.local_fields)}): {err!r}") from err


def _shot_pool(spec: TaskSpec, examples: list[dict], source: str) -> list[dict]:
    """The demonstrations a k-shot task draws from: its hub split ``hub_splits["shots"]`` (MMLU's dev split) when the
    questions came from the hub, else the questions themselves (a local file: ``spec.shots`` never shows a question
    its own answer)."""
    if not source.startswith("hub:"):
        return examples
    configs = spec.hub_config if isinstance(spec.hub_config, tuple) else (spec.hub_config,)
    return [spec.convert_hub(row) for config in configs
            for row in read_hub(spec.hub_dataset, config, spec.hub_splits["shots"])]


def _limit(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or n >= len(rows):
        return rows
    ids = np.random.RandomState(seed).permutation(len(rows))[:n]
    return [rows[i] for i in sorted(ids)]


def holdout_by_text(rows: list[dict], n_eval: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, eval): whole groups of examples sharing a text (``shared_text``) go to eval, in a seeded order,
    until at least ``n_eval`` examples are held out; the rest is training data."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(shared_text(row), []).append(i)
    members = list(groups.values())
    held: set[int] = set()
    for g in np.random.RandomState(seed).permutation(len(members)).tolist():
        if len(held) >= n_eval:
            break
        held.update(members[g])
    return ([r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held])


def load_task_data(task_cfg: Any, seed: int, use_local: bool) -> TaskData:
    """Train/dev/eval examples for ``task_cfg`` (a conf/task node). MeZO tasks use MeZO's sampling protocol."""
    spec = get_spec(task_cfg.name)
    if evaluation_only(spec):
        trainable = sorted(n for n, t in TASKS.items() if not evaluation_only(t))
        raise UserError(f"task.name={spec.name!r} has no training split (it is scored after training: "
                        f"task.eval_tasks={{{spec.name}: null}}); valid tasks to train on: {trainable}")
    train, train_src = _records(spec, "train", task_cfg, use_local, seed)
    eval_spec = get_spec(spec.eval_from) if spec.eval_from else spec  # MetaMath trains, GSM8K evaluates
    eval_rows, eval_src = _records(eval_spec, "eval", task_cfg, use_local, seed)
    dev: list[dict] = []
    if isinstance(train, LocalStream) and f"local-stream:{eval_src}" == train_src:
        # One local sample file for both (a corpus sample): read it whole and hold out its eval texts below.
        train, train_src = list(train), eval_src
    if isinstance(train, Stream):
        # Streamed (C4, from the hub or its local shards): the train split is read as training goes, the eval slice
        # is fixed; C4's train and validation splits are disjoint by construction, so nothing is held out here.
        sources = {"train": train_src, "eval": eval_src}
        if scored_on(task_cfg) == "validation":
            validation_split(spec, task_cfg, train, eval_rows, sources)   # says why a stream has none
        return TaskData(spec, train, dev, eval_rows, sources)
    if train_src == eval_src and spec.generator is None:
        # One file for both (the Alpaca sample, MultiRC's validation rows): hold out a seeded eval set that
        # shares no text with training (whole MultiRC passages go to one side).
        n_eval = min(task_cfg.num_eval or len(train) // 10, len(train) // 2)
        train, eval_rows = holdout_by_text(train, n_eval, seed)
    if spec.kind == "choice":
        train_ids, dev_ids, test_ids = mezo_split(len(train), len(eval_rows), seed, task_cfg.num_train,
                                                  task_cfg.num_dev, task_cfg.num_eval)
        train, dev, eval_rows = [train[i] for i in train_ids], [train[i] for i in dev_ids], [eval_rows[i] for i in test_ids]
    elif spec.generator is None:
        train = _limit(train, task_cfg.num_train, seed)
        # A corpus's held-out slice is one fixed slice for every seed and run.
        eval_rows = _limit(eval_rows, task_cfg.num_eval, 0 if eval_src.startswith("corpus:") else seed)
    train = _limit(train, task_cfg.get("limit_train"), seed)
    eval_named = _file_for(task_cfg.get("data_files"), "eval", "data_files") is not None
    if not eval_named:  # a file you name is evaluated whole
        eval_rows = _limit(eval_rows, task_cfg.get("limit_eval"), seed)
    dev = _limit(dev, task_cfg.get("limit_eval"), seed)
    extra = load_eval_tasks(task_cfg, seed, use_local)
    held_out = dev + eval_rows + [ex for _, rows, _ in extra.values() for ex in rows]
    sources = {"train": train_src, "eval": eval_src, **{f"eval:{name}": src for name, (_, _, src) in extra.items()}}
    if scored_on(task_cfg) == "validation":
        train, validation, sources = validation_split(spec, task_cfg, train, held_out, sources)
        train, removed = decontaminate(spec, train, held_out + validation)
        # The test rows were read only so that no training example repeats one; the run never scores them.
        withheld = 0 if spec.memorization else len(eval_rows)   # a memorisation task's test set is its training set
        return TaskData(spec, train, [], validation, sources, eval_named=eval_named, decontaminated=removed,
                        scored_on="validation", withheld=withheld)
    train, removed = decontaminate(spec, train, held_out)
    return TaskData(spec, train, dev, eval_rows, sources, eval_named, removed, extra)


SCORE_ON = ("test", "validation")
VALIDATION_CARVE_SEED = 0   # one validation split for every tuning seed: the seeds vary the training, not the split


def scored_on(task_cfg: Any) -> str:
    """``task.score_on``: "test" (every run but a tuning run; the key is absent from most configs) or "validation"."""
    return str(task_cfg.get("score_on") or "test")


def validation_split(spec: TaskSpec, task_cfg: Any, train: list[dict], held_out: list[dict],
                     sources: dict[str, str]) -> tuple[list[dict], list[dict], dict[str, str]]:
    """(train, validation, sources) of a tuning run (``task.score_on=validation``): ``task.num_validation`` examples
    held out of the training data by text (``holdout_by_text``, one fixed order for every seed), none of them sharing
    a text with a test or dev example; the test split is withheld. A memorisation task scores the examples it trains
    on by definition, so its validation split is its own training set: the tuning seeds draw their own pairs, which
    a final seed never draws (bench/papers/compare.py keeps the two sets of seeds apart)."""
    n = task_cfg.get("num_validation")
    if spec.memorization:
        if n is not None:
            raise UserError(f"task.num_validation={n} for task {spec.name!r}, a memorisation task: its validation "
                            "split is its own training set (the tuning seed's draw); valid: leave task.num_validation "
                            "unset")
        return train, list(train), {**sources, "eval": f"validation: the run's own training set ({sources['train']})"}
    if isinstance(train, Stream):
        raise UserError(f"task.score_on=validation: task {spec.name!r} streams its training corpus "
                        f"({sources['train']}), from which no validation split is held out; valid: a task with a "
                        "training list (the comparison tunes at the small tier)")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > len(train) // 2:
        raise UserError(f"task.num_validation={n!r} for task.score_on=validation; valid: an integer from 1 to half "
                        f"the {len(train)} training examples")
    train, validation = holdout_by_text(train, n, VALIDATION_CARVE_SEED)
    test_texts = {shared_text(ex) for ex in held_out}
    validation = [ex for ex in validation if shared_text(ex) not in test_texts]
    return train, validation, {**sources, "eval": f"validation: {len(validation)} of {sources['train']} held out by "
                                                  f"text; test withheld: {sources['eval']}"}


def load_eval_tasks(task_cfg: Any, seed: int, use_local: bool) -> dict[str, tuple[TaskSpec, list[dict], str]]:
    """The evaluation splits of ``task.eval_tasks`` ({task name: local eval file or null}): each read through its
    own task's loader and schema (the hub split at paper scale, the named file or the task's generator locally),
    every example (the task's own protocol), capped by ``task.limit_eval`` as the run's own eval split is."""
    extra: dict[str, tuple[TaskSpec, list[dict], str]] = {}
    for name, path in (task_cfg.get("eval_tasks") or {}).items():
        spec = get_spec(str(name))
        if spec.kind not in ("sft", "choice"):
            raise UserError(f"task.eval_tasks.{name}: a {spec.kind} task; valid: generation or choice tasks "
                            f"({sorted(n for n, t in TASKS.items() if t.kind in ('sft', 'choice'))})")
        sub = OmegaConf.create({"data_files": {}, "local_files": {"test": str(path)} if path else {}, "format": None,
                                "num_train": None, "num_eval": None})
        rows, source = _records(spec, "eval", sub, use_local, seed)
        extra[str(name)] = (spec, _limit(rows, task_cfg.get("limit_eval"), seed), source)
    return extra


def decontaminate(spec: TaskSpec, train: list[dict], held_out: list[dict]) -> tuple[list[dict], int]:
    """Training examples whose text (``shared_text``) is also a dev/eval example's are removed: real datasets
    repeat questions across splits (ARC-Easy, CoLA, STS-B). Memorization tasks evaluate on training on purpose."""
    if spec.memorization:
        return train, 0
    seen = {shared_text(ex) for ex in held_out}
    kept = [ex for ex in train if shared_text(ex) not in seen]
    return kept, len(train) - len(kept)


__all__ = ["TASKS", "TaskData", "TaskSpec", "get_spec", "load_task_data"]


def task_max_length(name: str) -> int | None:
    """A task's own max_length (its conf/task/<name>.yaml, or the default every task file starts from); None for a
    task with no file (an evaluation-only task such as MMLU, scored at the trained task's length)."""
    path = CONF_DIR / "task" / f"{name}.yaml"
    if not path.is_file():
        return None
    own = OmegaConf.load(path).get("max_length")
    return int(own) if own is not None else int(OmegaConf.load(CONF_DIR / "task" / "_common.yaml").max_length)
