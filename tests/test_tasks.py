"""Task loaders on every real file in ../shared/data, MeZO's sampling protocol, scorers, and lm-eval offline."""

from __future__ import annotations

import json

import pytest

from bench.errors import UserError
from bench.tasks import TASKS, load_task_data
from bench.tasks.instruct import final_number
from bench.tasks.readers import read_local
from bench.tasks.superglue import mezo_split
from tests.bench_helpers import run_inprocess
from tests.conftest import SHARED

DATA = SHARED / "data"
COUNTS = json.loads((DATA / "counts.json").read_text())

# file → the task whose local loader reads it
FILE_TASK = {
    "commonsense/ARC-Easy": "arc_easy", "commonsense/ARC-Challenge": "arc_challenge", "commonsense/boolq": "boolq",
    "commonsense/openbookqa": "openbookqa", "superglue/BoolQ": "boolq_mezo", "superglue/CB": "cb",
    "superglue/COPA": "copa", "superglue/MultiRC": "multirc", "superglue/RTE": "rte", "superglue/WSC": "wsc",
    "superglue/WiC": "wic", "glue/CoLA": "cola", "glue/MRPC": "mrpc", "glue/QNLI": "qnli", "glue/SST-2": "sst2",
    "glue/STS-B": "stsb", "alpaca/alpaca_en_demo.json": "alpaca", "gsm8k": "gsm8k",
}


def task_of(rel: str) -> str:
    return next(task for prefix, task in FILE_TASK.items() if rel.startswith(prefix))


def gold_is_right(task: str, raw: dict, ex: dict) -> bool:
    """The converted label points at the candidate the original record calls correct."""
    if task in ("arc_easy", "arc_challenge", "boolq", "openbookqa"):
        return ex["candidates"][ex["label"]] == f"the correct answer is {raw['answer']}"
    if task == "rte":
        return ex["candidates"][ex["label"]] == {"entailment": "Yes", "not_entailment": "No"}[raw["label"]]
    if task == "cb":
        return ex["candidates"][ex["label"]] == {"entailment": "Yes", "contradiction": "No", "neutral": "Maybe"}[raw["label"]]
    if task == "copa":
        chosen = raw["choice1"] if raw["label"] == 0 else raw["choice2"]
        return ex["candidates"][ex["label"]].strip().lower() == chosen.lower()
    if task in ("wic", "wsc", "boolq_mezo"):
        return ex["candidates"][ex["label"]].strip() == ("Yes" if raw["label"] else "No")
    if task == "sst2":
        return ex["label"] == int(raw["label"])
    if task == "cola":
        return ex["label"] == int(raw["label"])
    if task == "mrpc":
        return ex["label"] == int(raw["Quality"]) and ex["text"] == raw["#1 String"]
    if task == "qnli":
        return ex["label"] == {"entailment": 0, "not_entailment": 1}[raw["label"]]
    if task == "stsb":
        return ex["label"] == pytest.approx(float(raw["score"]))
    if task == "gsm8k":
        return final_number(ex["answer"]) is not None and ex["answer"] == raw["answer"]
    if task == "alpaca":
        return ex["answer"] == raw["output"]
    raise AssertionError(task)


@pytest.mark.parametrize("rel", sorted(COUNTS))
def test_every_shared_file_parses_with_its_count_fields_and_gold_labels(rel):
    task = task_of(rel)
    spec = TASKS[task]
    raw = read_local(DATA / rel, header=spec.local_header, columns=spec.local_columns)
    assert len(raw) == COUNTS[rel], f"{rel}: {len(raw)} rows, counts.json says {COUNTS[rel]}"
    assert all(f in raw[0] for f in spec.local_fields)
    rows = [r for row in raw for r in spec.expand(row)] if spec.expand else raw
    examples = [spec.convert_local(r) for r in rows]
    if task == "multirc":
        assert len(examples) > len(raw) and all(e["candidates"][e["label"]] == ("Yes" if r["label"] else "No") for r, e in zip(rows, examples))
        return
    bad = [i for i, (r, e) in enumerate(zip(rows, examples)) if not gold_is_right(task, r, e)]
    assert not bad, f"{rel}: gold label mismatch at rows {bad[:5]}"


def test_mezo_sampler_is_seeded_disjoint_and_literal_on_cb():
    a = mezo_split(2490, 277, seed=42, num_train=1000, num_dev=500, num_eval=1000)
    b = mezo_split(2490, 277, seed=42, num_train=1000, num_dev=500, num_eval=1000)
    c = mezo_split(2490, 277, seed=43, num_train=1000, num_dev=500, num_eval=1000)
    assert a == b and a != c
    train, dev, test = a
    assert (len(train), len(dev), len(test)) == (1000, 500, 277)
    assert not set(train) & set(dev)
    train, dev, test = mezo_split(250, 56, seed=1, num_train=1000, num_dev=100, num_eval=1000)  # CB
    assert (len(train), len(dev), len(test)) == (150, 100, 56) and not set(train) & set(dev)
    assert sorted(train + dev) == list(range(250)) and sorted(test) == list(range(56))


def test_cb_through_the_loader_follows_the_protocol(tmp_path):
    from tests.bench_helpers import compose_cfg

    cfg = compose_cfg(["task=cb", "task.limit_train=null", "task.limit_eval=null"], tmp_path)
    data = load_task_data(cfg.task, seed=1, use_local=True)
    assert (len(data.train), len(data.dev), len(data.eval)) == (150, 100, 56)


def test_missing_and_malformed_files_give_one_line_naming_file_and_fields(tmp_path):
    from tests.bench_helpers import compose_cfg

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"foo": 1}\n')
    for path, expected in [(tmp_path / "none.json", "no such file"), (bad, "unreadable as json"), (wrong, "lacks fields")]:
        cfg = compose_cfg(["task=rte", f"task.data_files.train={path}"], tmp_path)
        with pytest.raises(UserError) as err:
            load_task_data(cfg.task, seed=1, use_local=True)
        message = str(err.value)
        assert "\n" not in message and expected in message and str(path) in message and "premise" in message


FAMILY_RUNS = {  # one tiny run per family; its headline metric and valid range
    "commonsense": (["task=arc_easy"], "acc", (0, 1)),
    "superglue": (["task=rte"], "acc", (0, 1)),
    "glue": (["task=sst2", "model=tiny_roberta"], "acc", (0, 1)),
    "instruct": (["task=gsm8k", "task.limit_eval=4"], "exact_match", (0, 1)),
    "pretrain": (["task=c4", "model=tiny_llama", "method=mora"], "perplexity", (1, 1e6)),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILY_RUNS))
def test_tiny_run_per_family_reports_its_metric_in_range(family, tmp_path):
    overrides, metric, (lo, hi) = FAMILY_RUNS[family]
    limits = [] if any(o.startswith("task.limit_eval") for o in overrides) else ["task.limit_eval=16"]
    result, _ = run_inprocess([*overrides, "trainer.max_steps=4", "task.limit_train=32", *limits], tmp_path)
    assert lo <= result["metrics"][metric] <= hi
    if family == "commonsense":
        assert "lm-eval:" in result["scorer"] and result["lm_eval"]["version"] is not None
        assert "acc_stderr" in result["metrics"]
        # LLM-Adapters' generation protocol beside lm-eval's acc, on the same examples
        assert 0 <= result["metrics"]["gen_acc"] <= 1 and result["metrics"]["gen_acc_n"] == result["metrics"]["acc_n"]
    if family == "superglue":
        assert result["scorer"] == "mezo (mean option log-prob)" and 0 <= result["metrics"]["lm_eval_acc"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("task,rel,n", [
    ("arc_easy", "commonsense/ARC-Easy/test.json", 500),
    ("arc_challenge", "commonsense/ARC-Challenge/test.json", 300),
    ("boolq", "commonsense/boolq/test.json", 500),
    ("openbookqa", "commonsense/openbookqa/test.json", 500),
    ("rte", "superglue/RTE/val.jsonl", 277),
])
def test_a_named_test_file_is_evaluated_whole_offline(task, rel, n, tmp_path, monkeypatch):
    import bench.evaluate

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # LLM-Adapters' generation protocol (4 beams, 32 tokens: two thirds of this test's time on 500 rows) is held to
    # its equation by the family run above; here it only has to be handed every row lm-eval scores.
    handed: list[int] = []

    def generation_protocol(model, tokenizer, examples, max_length, batch_size):
        handed.append(len(examples))
        return bench.evaluate._mean_with_stderr("gen_acc", [0.0] * len(examples))

    monkeypatch.setattr(bench.evaluate, "score_llm_adapters", generation_protocol)
    split = "validation" if rel.endswith(".jsonl") else "test"
    result, _ = run_inprocess([f"task={task}", f"task.data_files.{split}={DATA / rel}", "trainer.max_steps=1",
                               "task.limit_train=16", "trainer.eval_strategy=no"], tmp_path)
    # Whole: every row of the file is scored, except rows longer than stories260K's 512-token window, which are
    # left out and counted (task.overlong=drop at the tiny/small tiers), never cut.
    dropped = result["examples"]["dropped_overlong"]["eval"]
    assert result["examples"]["eval"] + dropped == n and dropped < n // 20
    assert result["examples"]["longest_tokens"] <= 512
    assert result["lm_eval"]["n"] == result["examples"]["eval"]
    key = "acc" if task != "rte" else "lm_eval_acc"
    assert 0 <= result["metrics"][key] <= 1
    if task == "rte":
        assert result["metrics"]["acc_n"] == result["examples"]["eval"]  # the suite's MeZO scorer saw all of them too
    else:
        assert handed == [result["examples"]["eval"]]  # and the generation protocol all of them, once


def test_task_listing_names_every_task(capsys):
    from bench.tasks.__main__ import main

    main()
    out = capsys.readouterr().out
    assert all(name in out for name in TASKS) and "lm-eval task" in out and "scorer" in out


@pytest.mark.parametrize("task", ["piqa", "hellaswag", "mnli", "qqp", "rte_glue", "metamath"])
def test_tiny_stand_ins_use_the_real_schema_and_are_seeded(task, tmp_path, monkeypatch):
    from tests.bench_helpers import compose_cfg


    cfg = compose_cfg([f"task={task}", "task.num_train=40", "task.num_eval=20"], tmp_path)
    first = load_task_data(cfg.task, seed=3, use_local=True)
    again = load_task_data(cfg.task, seed=3, use_local=True)
    other = load_task_data(cfg.task, seed=4, use_local=True)
    assert first.train == again.train and first.train != other.train
    assert first.sources["train"] == "generator(seed=3)" and len(first.train) == 40
    spec = TASKS[task]
    for ex in first.train:
        if spec.kind == "cls":
            assert 0 <= ex["label"] < spec.num_labels and ex["text"] and ex["text_pair"]
        elif "candidates" in ex:
            assert 0 <= ex["label"] < len(ex["candidates"]) and ex["prompt"]
        else:
            assert final_number(ex["answer"]) is not None
    if task == "metamath":
        assert first.sources["eval"].endswith("gsm8k/test.jsonl")  # MetaMath trains, GSM8K evaluates
    import bench.tasks as tasks

    def hub(dataset, config, split):
        raise UserError(f"hub asked for {dataset}")

    monkeypatch.setattr(tasks, "read_hub", hub)
    with pytest.raises(UserError, match=f"hub asked for {spec.hub_dataset}"):
        load_task_data(cfg.task, seed=3, use_local=False)  # never a stand-in at paper scale: the hub is asked


def test_no_encoded_sequence_exceeds_max_length(stories_dir):
    from bench.run.data import encode
    from bench.run.models import load_tokenizer

    from omegaconf import OmegaConf

    tok = load_tokenizer(OmegaConf.create({"tokenizer": str(stories_dir), "source": "hub", "path": str(stories_dir)}))
    long = {"prompt": "Tell me a story. " * 40, "answer": "Once upon a time " * 200}
    for kind, ex in [("sft", long), ("choice", {**long, "candidates": ["yes", "no " * 300], "label": 0})]:
        for feature in encode(kind, [ex], tok, 64):
            seqs = feature["input_ids"] if kind == "choice" else [feature["input_ids"]]
            assert all(len(s) <= 64 for s in seqs)
            labels = feature["labels"] if kind == "choice" else [feature["labels"]]
            assert all(any(t != -100 for t in lab) for lab in labels)  # the answer (or its start) survives


def _fake_c4(tmp_path, monkeypatch, n_train: int = 300, n_eval: int = 40):
    """The hub's C4 replaced by local jsonl splits read through datasets' own streaming mode; every open is recorded."""
    import datasets

    texts = {split: [f"{split} document {i}: " + "the cat sat on the mat. " * (1 + i % 7) for i in range(n)]
             for split, n in (("train", n_train), ("validation", n_eval))}
    for split, rows in texts.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "url": "u"}) + "\n" for t in rows))
    opened = []
    real = datasets.load_dataset

    def load_dataset(name, config=None, split=None, streaming=False, **kwargs):
        opened.append((name, config, split, streaming))
        return real("json", data_files=str(tmp_path / f"{split}.jsonl"), split="train", streaming=streaming)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return texts, opened


def test_c4_at_paper_scale_is_streamed_with_a_fixed_held_out_slice(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from bench.run.data import PackedStream, pack_lm
    from bench.run.models import load_tokenizer
    from bench.tasks.readers import HubStream

    texts, opened = _fake_c4(tmp_path, monkeypatch)
    task = OmegaConf.create({"name": "c4", "num_eval": 25, "data_files": {}, "local_files": {}})
    data = load_task_data(task, seed=1, use_local=False)
    assert isinstance(data.train, HubStream) and opened == [("allenai/c4", "en", "validation", True)]   # train: lazy
    assert [ex["text"] for ex in data.eval] == texts["validation"][:25]   # the split's first 25, for every seed
    assert [ex["text"] for ex in load_task_data(task, seed=7, use_local=False).eval] == texts["validation"][:25]
    tokenizer = load_tokenizer(OmegaConf.create({"tokenizer": str(SHARED / "data/models/stories260K"), "source": "config"}))
    blocks = list(PackedStream(data.train, tokenizer, 64))
    assert blocks == pack_lm([{"text": t} for t in texts["train"]], tokenizer, 64) and len(blocks) > 10
    assert opened[-1] == ("allenai/c4", "en", "train", True)   # opened in streaming mode, only when training reads


def test_a_streamed_corpus_trains_for_max_steps_and_needs_them(tmp_path, monkeypatch):
    _fake_c4(tmp_path, monkeypatch)
    base = ["model=tiny_llama", "task=c4", "scale=tiny", "scale.local_data=false", "task.num_eval=8",
            "task.max_length=64", "trainer.per_device_train_batch_size=4", "trainer.save_steps=6",
            "trainer.eval_steps=6", "trainer.logging_steps=2"]
    result, _ = run_inprocess([*base, "trainer.max_steps=6"], tmp_path, "streamed")
    assert result["steps"] == 6 and result["examples"]["train"] == "streamed"
    assert result["data_sources"]["train"] == "hub-stream:allenai/c4/en:train" and result["examples"]["eval"] == 8
    with pytest.raises(UserError, match="set trainer.max_steps"):
        run_inprocess([*base, "trainer.max_steps=-1", "trainer.num_train_epochs=1"], tmp_path, "epochs")


def test_llm_adapters_extraction_takes_the_first_option_named_in_the_text():
    from bench.evaluate import extract_option
    from bench.tasks.commonsense import from_llm_adapters

    example = from_llm_adapters({"instruction": "Please choose the correct answer to the question: Q\n\nAnswer1: a\n"
                                 "Answer2: b\n\nAnswer format: answer1/answer2", "answer": "answer2"})
    names = example["options"]
    assert names == ["answer1", "answer2"] and names[example["label"]] == "answer2"
    assert extract_option("the correct answer is answer2, not answer1", names) == "answer2"
    assert extract_option("I think answer1", names) == "answer1"
    assert extract_option("no idea", names) is None
    assert extract_option("answer10 then answer1", [f"answer{i}" for i in range(1, 11)]) == "answer10"
    assert extract_option("  true.", ["true", "false"]) == "true"


def test_a_pooled_training_set_scores_each_eval_task_and_never_trains_on_their_questions(tmp_path):
    """task.local_files.train may list several files (one pooled split, as LLM-Adapters' commonsense collection);
    task.eval_tasks reads each benchmark through its own schema; a training question that is also a benchmark's
    test question is removed from training."""
    import json

    from bench.tasks import load_task_data

    def record(question, answer="answer1"):
        return {"instruction": f"Please choose the correct answer to the question: {question}\n\nAnswer1: x\n"
                               "Answer2: y\n\nAnswer format: answer1/answer2", "input": "", "output": "", "answer": answer}

    leaked = record("leaked?")
    (tmp_path / "a.json").write_text(json.dumps([record(f"a{i}") for i in range(30)] + [leaked]))
    (tmp_path / "b.json").write_text(json.dumps([record(f"b{i}") for i in range(30)]))
    (tmp_path / "test.json").write_text(json.dumps([leaked, record("t1", "answer2")]))
    pool = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    from tests.bench_helpers import compose_cfg

    cfg = compose_cfg(["task=commonsense_170k", f"task.local_files.train=[{pool[0]},{pool[1]}]",
                       f"task.local_files.test=[{pool[0]},{pool[1]}]", "task.num_eval=6", "task.limit_train=null",
                       "task.limit_eval=null", f"~task.eval_tasks", f"+task.eval_tasks={{arc_easy: '{tmp_path / 'test.json'}'}}"],
                      tmp_path)
    data = load_task_data(cfg.task, seed=1, use_local=True)
    assert set(data.extra_eval) == {"arc_easy"}
    spec, rows, source = data.extra_eval["arc_easy"]
    assert spec.name == "arc_easy" and len(rows) == 2 and source.endswith("test.json")
    assert data.decontaminated == 1 and len(data.train) + len(data.eval) == 60
    assert {ex["prompt"] for ex in data.train}.isdisjoint(ex["prompt"] for ex in rows)
    assert data.sources["train"] == "+".join(pool)


@pytest.mark.parametrize("generated,solution,right", [
    ("So x = 3.\nThe answer is: 3", "Thus $x = \\boxed{3}$.", True),
    ("The answer is: \\frac12", "$\\boxed{\\dfrac{1}{2}}$", True),
    ("The answer is: 0.5.", "$\\boxed{\\frac{1}{2}}$", True),
    ("The answer is: 5 \\text{ cm}", "$\\boxed{5}$", True),
    ("The answer is: 90^\\circ", "$\\boxed{90}$", True),
    ("The answer is: \\left( 1, 2 \\right)", "$\\boxed{(1,2)}$", True),
    ("The answer is: 4", "$\\boxed{\\frac{1}{4}}$", False),
    ("no final answer here", "$\\boxed{3}$", False),
    ("we get $\\boxed{\\sqrt{2}}$", "$\\boxed{\\sqrt2}$", True),   # no "The answer is": the last box
])
def test_math_answers_agree_after_the_benchmarks_normalisation(generated, solution, right):
    from bench.tasks.math_answers import equivalent, last_boxed, predicted_answer

    assert equivalent(predicted_answer(generated), last_boxed(solution)) is right


def test_the_math_gold_is_the_last_box_with_nested_braces():
    from bench.tasks.math_answers import last_boxed

    assert last_boxed("first \\boxed{1}, then \\boxed{\\frac{a}{b^{2}}} done") == "\\frac{a}{b^{2}}"
    assert last_boxed("no box") is None


def test_tulu_conversations_train_on_the_last_assistant_turn_in_open_instructs_format():
    from bench.tasks.instruct import tulu

    ex = tulu({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                            {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": " 4 "}]})
    assert ex == {"prompt": "<|user|>\nHi\n<|assistant|>\nHello\n<|user|>\n2+2?\n<|assistant|>\n", "answer": "4"}


def test_mmlu_examples_take_lm_evals_prompt_form():
    from bench.tasks.mmlu import mmlu

    ex = mmlu({"question": "Q? ", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 2})
    assert ex == {"prompt": "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:", "candidates": [" A", " B", " C", " D"], "label": 2}


def test_c4_from_local_shards_streams_them_record_by_record(tmp_path):
    """An offline cluster's copy of C4 (json.gz shards): the corpus is streamed as the hub's would be, never read
    whole, in the shards' order; its validation file is the fixed eval slice."""
    import gzip
    import json as _json

    from omegaconf import OmegaConf

    from bench.tasks import load_task_data
    from bench.tasks.readers import LocalStream

    for shard in range(2):
        with gzip.open(tmp_path / f"c4-train.{shard:05d}-of-00002.json.gz", "wt") as f:
            for i in range(3):
                f.write(_json.dumps({"text": f"shard {shard} doc {i}", "url": "u", "timestamp": "t"}) + "\n")
    (tmp_path / "c4-validation.jsonl").write_text("\n".join(_json.dumps({"text": f"val {i}"}) for i in range(4)) + "\n")
    task = OmegaConf.create({"name": "c4", "data_files": {"train": str(tmp_path / "c4-train.*.json.gz"),
                                                          "test": str(tmp_path / "c4-validation.jsonl")},
                             "format": None, "num_train": None, "num_eval": 2, "num_dev": 0, "limit_train": None,
                             "limit_eval": None, "local_files": {}, "eval_tasks": {}})
    data = load_task_data(task, seed=1, use_local=True)
    assert isinstance(data.train, LocalStream) and data.sources["train"].startswith("local-stream:")
    assert [r["text"] for r in data.train] == [f"shard {s} doc {i}" for s in range(2) for i in range(3)]
    assert data.train.take(2) == [{"text": "shard 0 doc 0"}, {"text": "shard 0 doc 1"}]
    assert [r["text"] for r in data.eval] == [f"val {i}" for i in range(4)]   # a named eval file is read whole
