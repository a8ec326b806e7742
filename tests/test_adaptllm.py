"""MoRA's continual pretraining (Table 1's BioMed. and Finance columns): the corpora and the nine evaluation sets of
bench/tasks/adaptllm.py read from their local sample files (tests/fixtures/adaptllm/, hand-written in the hub
schemas), scored by a real tiny model (stories260K) through AdaptLLM's scorers (bench/adaptllm_eval.py), the scorers'
arithmetic held to written-out oracles, and a dataset that cannot be read said in one line."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import bench.resolvers  # noqa: F401  (${cwd:})
from bench import adaptllm_eval as ae
from bench.errors import UserError
from bench.tasks import TASKS, load_eval_tasks, load_task_data
from bench.tasks.adaptllm import DOMAINS, MMLU_SHOTS
from bench.tasks.hub_pins import HUB_REVISIONS, UNPINNED
from tests.conftest import REPO, SHARED

FIXTURES = REPO / "tests" / "fixtures" / "adaptllm"
NEW_TASKS = ("pubmed_abstracts", "fin_news", *DOMAINS["BioMed"], *DOMAINS["Finance"])


def raw(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def task_cfg(name: str, **extra):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"task={name}", f"paths.root_dir={REPO}",
                                          f"paths.shared_data={SHARED / 'data'}"])
    task = cfg.task
    for key, value in extra.items():
        OmegaConf.update(task, key, value, merge=False)
    return task


@pytest.fixture(scope="module")
def stories():
    from bench.run.models import load_model, load_tokenizer

    path = str(SHARED / "data/models/stories260K")
    model_cfg = OmegaConf.create({"name": "stories260k", "source": "local", "path": path, "tokenizer": path,
                                  "dtype": "float32"})
    tokenizer = load_tokenizer(model_cfg)
    torch.manual_seed(0)
    return load_model(model_cfg, "causal_lm", None, tokenizer), tokenizer


# ----------------------------------------------------------------------------------------------- registry and pins
def test_every_new_task_is_registered_and_every_hub_dataset_pinned_or_says_why():
    for name in NEW_TASKS:
        spec = TASKS[name]
        assert spec.paper == "mora" and (spec.hub_dataset is None) == (name == "fin_news")
        if spec.hub_dataset:
            assert spec.hub_dataset in HUB_REVISIONS or spec.hub_dataset in UNPINNED, spec.hub_dataset
    assert HUB_REVISIONS["AdaptLLM/medicine-tasks"] == "68afee8d7be55335ba0e34deacc23120233161f6"
    assert HUB_REVISIONS["AdaptLLM/finance-tasks"] == "cb7ab029f29e88fb25ffa65fd881ad14c25383fc"
    assert "ArmelR/the-pile-splitted" in UNPINNED and TASKS["pubmed_abstracts"].stream


# ----------------------------------------------------------------------------------------------- loaders
@pytest.mark.parametrize("corpus", ["pubmed_abstracts", "fin_news"])
def test_a_corpus_sample_loads_with_a_held_out_half_and_the_domains_tasks(corpus):
    data = load_task_data(task_cfg(corpus), seed=1, use_local=True)
    texts = [r["text"] for r in raw(FIXTURES / f"{corpus}.jsonl")]
    assert len(data.train) + len(data.eval) == len(texts) == 40 and len(data.eval) == 20
    assert not {e["text"] for e in data.train} & {e["text"] for e in data.eval}
    domain = "BioMed" if corpus == "pubmed_abstracts" else "Finance"
    assert set(data.extra_eval) == set(DOMAINS[domain])


@pytest.mark.parametrize("task,file", [("pubmedqa", "medicine/PubMedQA.jsonl"), ("usmle", "medicine/USMLE.jsonl"),
                                       ("rct", "medicine/RCT.jsonl"), ("fiqa_sa", "finance/FiQA_SA.jsonl"),
                                       ("fpb", "finance/FPB.jsonl"), ("headline", "finance/Headline.jsonl")])
def test_adaptllm_choice_records_keep_the_hub_prompt_and_options(task, file):
    """AdaptLLM's `input` is the finished prompt (its demonstrations inside); the candidates are ' ' + option."""
    rows = raw(FIXTURES / file)
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {task: str(FIXTURES / file)}}), 1, True)[task][1]
    assert len(examples) == len(rows)
    for row, ex in zip(rows, examples):
        assert ex["prompt"] == row["input"] and ex["candidates"] == [" " + o for o in row["options"]]
        assert ex["label"] == row["gold_index"] and ex.get("class_id") == row.get("class_id")


@pytest.mark.parametrize("task,file", [("convfinqa", "finance/ConvFinQA.jsonl"), ("ner", "finance/NER.jsonl")])
def test_adaptllm_completion_records_answer_with_a_space_and_the_label(task, file):
    rows = raw(FIXTURES / file)
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {task: str(FIXTURES / file)}}), 1, True)[task][1]
    assert [(ex["prompt"], ex["answer"]) for ex in examples] == [(r["input"], " " + r["label"]) for r in rows]
    from bench.tasks.adaptllm import adaptllm_completion

    assert adaptllm_completion({"input": "q", "label": ["12", "13"]})["answer"] == " 12"   # a list: its first


def test_biommlu_prompts_carry_their_subjects_header_and_other_questions_as_demonstrations():
    path = FIXTURES / "mmlu_biomed.jsonl"
    rows = raw(path)
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {"biommlu": str(path)}}), 1, True)["biommlu"][1]
    assert len(examples) == len(rows) == 12
    first = examples[0]   # anatomy: the other anatomy question is its one demonstration
    assert first["prompt"] == (
        "The following are multiple choice questions (with answers) about anatomy.\n\n"
        "The phrenic nerve arises mainly from which spinal roots?\nA. C1-C2\nB. C3-C5\nC. C6-C8\nD. T1-T2\n"
        "Answer: B\n\n"
        "Which bone forms the heel?\nA. Talus\nB. Calcaneus\nC. Navicular\nD. Cuboid\nAnswer:")
    assert first["candidates"] == [" A", " B", " C", " D"] and first["label"] == 1 and first["shots"] == 1
    for ex in examples:
        demos = ex["prompt"].split("\n\n")[1:-1]
        assert len(demos) == min(MMLU_SHOTS, 1) and ex["prompt"].count(ex["prompt"].split("\n\n")[-1]) == 1


def test_biommlu_at_paper_scale_draws_its_five_demonstrations_from_each_subjects_dev_split(monkeypatch):
    import datasets

    opened = []

    def load_dataset(name, config=None, split=None, revision=None, **kwargs):
        opened.append((name, config, split, revision))
        n = 7 if split == "test" else 6
        return [{"question": f"{config} {split} q{i}", "subject": config, "choices": ["w", "x", "y", "z"],
                 "answer": i % 4} for i in range(n)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {"biommlu": None}}), 1, False)["biommlu"][1]
    assert len(examples) == 6 * 7 and all(ex["shots"] == MMLU_SHOTS for ex in examples)
    assert {(c, s) for _, c, s, _ in opened} == {(c, s) for c in TASKS["biommlu"].hub_config for s in ("test", "dev")}
    assert {r for *_, r in opened} == {HUB_REVISIONS["cais/mmlu"]}
    ex = examples[0]
    assert "anatomy dev q0" in ex["prompt"] and "anatomy dev q5" not in ex["prompt"] and "test q1" not in ex["prompt"]


# ------------------------------------------------------------------------------------ data that cannot be read
def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    return text


def test_the_financial_news_corpus_says_in_one_line_that_it_has_no_public_data():
    with pytest.raises(UserError) as err:
        load_task_data(task_cfg("fin_news"), seed=1, use_local=False)
    text = _one_line(err)
    assert text.startswith("task 'fin_news': no public data (") and "task.data_files.train=PATH" in text


def test_a_local_copy_of_the_news_corpus_is_read_instead():
    """At paper scale (no local sample files) a copy named with task.data_files is the corpus."""
    news = str(FIXTURES / "fin_news.jsonl")
    data = load_task_data(task_cfg("fin_news", **{"data_files.train": news, "data_files.test": news, "eval_tasks": {}}),
                          seed=1, use_local=False)
    assert len(data.train) + len(data.eval) == 40 and data.sources == {"train": news, "eval": news}


def test_an_evaluation_set_the_hub_cannot_serve_is_one_line_naming_it(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'AdaptLLM/medicine-tasks' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as err:
        load_eval_tasks(OmegaConf.create({"eval_tasks": {"pubmedqa": None}}), 1, False)
    text = _one_line(err)
    assert "'AdaptLLM/medicine-tasks'" in text and "'PubMedQA'" in text and "'test'" in text


# ----------------------------------------------------------------------------------------------- scorers, oracles
def test_the_option_with_the_highest_mean_log_likelihood_per_token_wins():
    assert ae.predictions([[-1.0, -0.5, -2.0], [-0.3, -0.3], [-4.0, -3.9]]) == [1, 0, 1]


@pytest.mark.parametrize("metric,preds,golds,groups,expected", [
    ("acc", [0, 1, 2, 1], [0, 1, 1, 1], None, 0.75),
    ("micro_f1", [0, 1, 2, 1], [0, 1, 1, 1], None, 0.75),          # one label per example: micro-F1 = accuracy
    # class 0: P 1/2 R 1/2 F1 1/2 (support 2); class 1: P 2/3 R 1 F1 4/5 (support 2); class 2: F1 0 (support 1)
    ("weighted_f1", [0, 1, 1, 1, 0], [0, 0, 1, 1, 2], None, (2 * 0.5 + 2 * 0.8 + 1 * 0.0) / 5),
    # Headline: sub-question 0 all right (F1 1); sub-question 1: class 1 P 1 R 1/2 F1 2/3 (support 2), class 0 no
    # support: weighted 2/3; the mean of the two sub-questions
    ("weighted_f1", [1, 0, 0, 1], [1, 0, 1, 1], [0, 0, 1, 1], (1 + 2 / 3) / 2),
])
def test_choice_metrics_match_adaptllms_arithmetic(metric, preds, golds, groups, expected):
    assert ae.choice_metric(metric, preds, golds, groups) == pytest.approx(expected)


def test_convfinqa_reads_numbers_as_adaptllms_normalized_num():
    assert ae.numbers("about 1,234.5 or 20% then -3e2\nsecond line 9") == [1234.5, 0.2, -300.0]
    assert ae.numbers("5%%") == [0.0005] and ae.numbers("no digits") == []
    assert ae.numbers("05") == [math.inf]   # Python cannot read an integer with a leading zero (AdaptLLM eval()s it)
    assert ae.convfinqa_match("22.305", " 22.3") and not ae.convfinqa_match("22.32", " 22.3")   # |d| <= 0.01
    assert ae.convfinqa_match("20%", " 0.2") and ae.convfinqa_match("either 5 or 7", " 7")   # any predicted number
    assert not ae.convfinqa_match("none", " 7") and not ae.convfinqa_match("7", " n/a")
    assert ae.convfinqa_match("line one\n22.3", " 22.3") is False   # only the first line is read
    assert ae.completion_metric("exact_match", ["22.3", "0", "20%"], [" 22.3", " 1", " 0.2"]) == pytest.approx(2 / 3)


def test_ner_entities_and_their_f1_follow_qa_utils_and_nereval():
    E = ae.Entity
    assert ae.parse_entities("Smith (PER) Seattle (LOC) Smith (PER)") == [E("Smith", "PER", 0), E("Seattle", "LOC", 0)]
    assert ae.parse_entities("John Smith (PER) and x") == [E("Smith", "PER", 0)]   # one word before its (TYPE)
    # nereval's docstring example: 2 gold, 1 predicted matching one on text and type: P 2/2, R 2/4, F1 2/3
    assert ae.entity_f1([E("a", "b", 0), E("b", "b", 2)], [E("b", "b", 2)]) == pytest.approx(2 / 3)
    assert ae.entity_f1([E("Smith", "PER", 0)], [E("Jones", "PER", 0)]) == pytest.approx(0.5)   # type only: 1 of 2
    assert ae.entity_f1([], []) == 0.0 and ae.entity_f1([E("a", "T", 0)], []) == 0.0
    preds, golds = ["Smith (PER)", "Bank (ORG) Boston (LOC)"], [" Smith (PER) Seattle (LOC)", " Boston (LOC)"]
    # example 1: 2/3 (as above); example 2: gold Boston matches the second prediction on both (2 of 2 possible,
    # 2 of 4 predicted): P 1/2, R 1, F1 2/3
    assert ae.completion_metric("entity_f1", preds, golds) == pytest.approx(2 / 3)


def test_the_domain_columns_average_their_tasks_in_percent():
    from bench.report.metrics import percent_mean

    read = percent_mean("pubmedqa/acc", "usmle/acc", "biommlu/acc", "rct/micro_f1")
    # Table 6's MoRA r 8 row: (73.3 + 34.7 + 45.3 + 59.9) / 4 = 53.3, its Avg.
    metrics = {"pubmedqa/acc": 0.733, "usmle/acc": 0.347, "biommlu/acc": 0.453, "rct/micro_f1": 0.599}
    assert read(None, metrics, "") == pytest.approx(53.3)
    assert read(None, {**metrics, "rct/micro_f1": None}, "") is None and read(None, {"pubmedqa/acc": 1}, "") is None


# ----------------------------------------------------------------------------------------------- stories260K end to end
def _mean_logprob_oracle(model, tokenizer, prompt: str, candidate: str) -> float:
    """Written out: the candidate's tokens past the prompt's, each one's log-probability given all before it."""
    q = tokenizer(prompt, add_special_tokens=False).input_ids
    qa = tokenizer(prompt + candidate, add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([qa])).logits[0].float()
    logp = [torch.log_softmax(logits[i - 1], -1)[qa[i]].item() for i in range(len(q), len(qa))]
    return sum(logp) / len(logp)


@pytest.mark.parametrize("task,file", [("pubmedqa", "medicine/PubMedQA.jsonl"), ("rct", "medicine/RCT.jsonl"),
                                       ("biommlu", "mmlu_biomed.jsonl"), ("fpb", "finance/FPB.jsonl"),
                                       ("headline", "finance/Headline.jsonl")])
def test_a_tiny_model_scores_each_choice_family_by_per_token_likelihood(task, file, stories):
    from bench.evaluate import evaluate_final

    model, tokenizer = stories
    spec = TASKS[task]
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {task: str(FIXTURES / file)}}), 1, True)[task][1]
    scores = ae.option_scores(model, tokenizer, examples, batch_size=3)
    for ex, row in list(zip(examples, scores))[:3]:   # the written-out oracle is slow: three examples
        assert row == pytest.approx([_mean_logprob_oracle(model, tokenizer, ex["prompt"], c) for c in ex["candidates"]],
                                    abs=1e-4)
    metrics, provenance = evaluate_final(spec, model, tokenizer, examples, None, use_builtin=False, max_length=1024,
                                         batch_size=4)
    golds = [ex["label"] for ex in examples]
    groups = [ex["class_id"] for ex in examples] if task == "headline" else None
    assert metrics[spec.metric] == pytest.approx(ae.choice_metric(spec.metric, ae.predictions(scores), golds, groups))
    assert 0.0 <= metrics[spec.metric] <= 1.0 and metrics[f"{spec.metric}_n"] == len(examples)
    assert provenance["scorer"] == "adaptllm:choice"


@pytest.mark.parametrize("task,file", [("convfinqa", "finance/ConvFinQA.jsonl"), ("ner", "finance/NER.jsonl")])
def test_a_tiny_model_scores_each_completion_family_greedily_up_to_a_newline(task, file, stories, monkeypatch):
    from bench.evaluate import evaluate_final

    model, tokenizer = stories
    spec = TASKS[task]
    examples = load_eval_tasks(OmegaConf.create({"eval_tasks": {task: str(FIXTURES / file)}}), 1, True)[task][1]
    batched = ae.completions(model, tokenizer, [ex["prompt"] for ex in examples], batch_size=2)
    for ex, text in list(zip(examples, batched))[:2]:   # one at a time, no padding, no stopping: the same first line
        ids = torch.tensor([tokenizer(ex["prompt"], add_special_tokens=False).input_ids])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=ae.GENERATE_MAX_LEN,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0]
        assert "\n" not in text
    metrics, provenance = evaluate_final(spec, model, tokenizer, examples, None, use_builtin=False, max_length=1024,
                                         batch_size=2)
    expected = ae.completion_metric(spec.metric, batched, [ex["answer"] for ex in examples])
    assert metrics == {spec.metric: pytest.approx(expected), f"{spec.metric}_n": len(examples)}
    assert provenance["scorer"] == "adaptllm:completion"


def test_a_completion_prompt_is_cut_from_the_left_to_adaptllms_budget(stories, monkeypatch):
    model, tokenizer = stories
    monkeypatch.setattr(ae, "N_TOKENS", 40)
    monkeypatch.setattr(ae, "GENERATE_MAX_LEN", 8)
    seen = []
    real = model.generate

    def generate(**kwargs):
        seen.append(kwargs["input_ids"][0].tolist())
        return real(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    prompt = " ".join(f"word{i}" for i in range(60))
    ae.completions(model, tokenizer, [prompt], batch_size=1)
    full = tokenizer(prompt, add_special_tokens=False).input_ids
    assert len(full) > 32 and seen == [full[-32:]]


# ----------------------------------------------------------------------------------------------- Table 1's columns
def test_table1_reads_a_domains_mean_and_says_finance_has_no_public_data(tmp_path):
    from bench.report.__main__ import main
    from tests.test_report import fake_run

    runs = tmp_path / "runs"
    base = {"report": {"paper": "mora", "tables": ["1"]}, "scale": {"name": "paper"}, "model": {"name": "llama2-7b"},
            "seed": 1, "task": {"name": "pubmed_abstracts"}}
    scores = {"pubmedqa/acc": 0.733, "usmle/acc": 0.347, "biommlu/acc": 0.453, "rct/micro_f1": 0.599}
    fake_run(runs, "mora8", {**base, "method": {"name": "mora", "mora_type": "rotation", "r": 8}},
             {"task": "pubmed_abstracts", "eval_tasks": {t: {"n": 5} for t in DOMAINS["BioMed"]},
              "metrics": {"eval_loss": 2.0, "perplexity": 7.4, **scores}})
    fake_run(runs, "lora8", {**base, "method": {"name": "lora", "r": 8}},
             {"task": "pubmed_abstracts", "eval_tasks": {t: {"n": 5} for t in DOMAINS["BioMed"]},
              "metrics": {**scores, "rct/micro_f1": None}})   # a task missing: no number, never a partial mean
    main(["--paper", "mora", "--runs", str(runs), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "mora" / "table1.csv", newline="") as f:
        cells = {(r["method"], r["rank"], r["metric"]): r["reproduced"] for r in csv.DictReader(f)}
    assert cells[("MoRA", "8", "BioMed")] == "53.30"   # Table 6's row: 53.3
    assert cells[("LoRA", "8", "BioMed")] == "not run"
    assert cells[("MoRA", "8", "Finance")] == cells[("FFT", "", "Finance")] == "no public data"
    assert cells[("MoRA", "8", "GSM8K")] == cells[("MoRA", "8", "MMLU_0shot")] == "not run"   # not the BioMed runs'
