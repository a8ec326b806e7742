"""Look at the data: no task cuts an example at its configured max_length, and no evaluation example shares its
text with a training example (MultiRC's passages, questions repeated across real splits)."""

from __future__ import annotations

import pytest

from bench.run.data import encode, example_lengths, fit_examples
from bench.errors import UserError
from bench.run.models import load_tokenizer
from bench.tasks import TASKS, load_task_data
from bench.tasks.registry import evaluation_only, shared_text
from tests.bench_helpers import compose_cfg

LOCAL_TASKS = sorted(name for name, spec in TASKS.items() if not evaluation_only(spec))  # MMLU: scored, never trained


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(compose_cfg([], tmp_path_factory.mktemp("tok")).model)


def small_data(task: str, tmp_path):
    cfg = compose_cfg([f"task={task}", "scale=small", "task.num_train=400", "task.num_eval=200"], tmp_path)
    return cfg, load_task_data(cfg.task, seed=1, use_local=True)


@pytest.mark.parametrize("task", LOCAL_TASKS)
def test_no_task_truncates_its_examples_at_its_max_length(task, tokenizer, tmp_path):
    cfg, data = small_data(task, tmp_path)
    splits = {"train": data.train, "dev": data.dev, "eval": data.eval}
    fitted, longest, dropped = fit_examples(task, data.spec.kind, splits, tokenizer, cfg.task.max_length, cfg.task.overlong)
    assert longest <= cfg.task.max_length
    kind = data.spec.kind
    if kind in ("sft", "cls") and fitted["train"]:
        full = example_lengths(kind, fitted["train"], tokenizer)
        encoded = encode(kind, fitted["train"], tokenizer, cfg.task.max_length)
        assert [len(e["input_ids"]) for e in encoded] == full  # every kept example whole, none cut


def test_uuid_pairs_fit_whole_at_the_task_default():
    """The bug that shipped once: 64 tokens cut UUID keys (a pair is up to 77 stories260K tokens)."""
    from tests.bench_helpers import compose_cfg as compose
    import tempfile
    cfg = compose(["task=uuid", "task.num_train=2000"], tempfile.mkdtemp())
    tok = load_tokenizer(cfg.model)
    data = load_task_data(cfg.task, seed=1, use_local=True)
    _, longest, dropped = fit_examples("uuid", "sft", {"train": data.train}, tok, cfg.task.max_length, "error")
    assert 70 <= longest <= cfg.task.max_length and dropped == {"train": 0}
    with pytest.raises(UserError, match=r"task=uuid: the longest train example is \d+ tokens but task.max_length=64"):
        fit_examples("uuid", "sft", {"train": data.train}, tok, 64, "error")


@pytest.mark.parametrize("task", [t for t in LOCAL_TASKS if not TASKS[t].memorization])
def test_no_evaluation_example_shares_its_text_with_a_training_example(task, tmp_path):
    _, data = small_data(task, tmp_path)
    train_texts = {shared_text(ex) for ex in data.train}
    scored_after = [ex for _, rows, _ in data.extra_eval.values() for ex in rows]  # task.eval_tasks (MATH, MMLU, ...)
    assert not [ex for ex in data.eval + data.dev + scored_after if shared_text(ex) in train_texts]


def test_an_evaluation_only_task_is_refused_as_training_data_with_one_line(tmp_path):
    cfg = compose_cfg(["task=tulu_v2", "task.name=mmlu_0shot"], tmp_path)
    with pytest.raises(UserError) as err:
        load_task_data(cfg.task, seed=1, use_local=True)
    message = str(err.value)
    assert "\n" not in message and "task.name='mmlu_0shot'" in message and "tulu_v2" in message


def test_multirc_passages_stay_on_one_side(tmp_path):
    _, data = small_data("multirc", tmp_path)
    assert {ex["group"] for ex in data.train}.isdisjoint({ex["group"] for ex in data.eval})


def test_the_pretraining_corpus_holds_out_a_fixed_slice(tmp_path):
    cfg = compose_cfg(["task=c4", "scale=small", "task.num_eval=200"], tmp_path)
    data = load_task_data(cfg.task, seed=1, use_local=True)
    other_seed = load_task_data(cfg.task, seed=7, use_local=True)
    assert [e["text"] for e in data.eval] == [e["text"] for e in other_seed.eval]  # the same slice for every seed
    assert len(data.train) > 50_000 and sum(len(e["text"]) for e in data.train) > 5_000_000
