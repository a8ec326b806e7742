"""bench.report: the published layout is kept whole, missing and failed runs never become numbers, regeneration
is byte-identical, and malformed published rows are refused with one line."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.papers import PAPERS, load
from bench.report.__main__ import main
from bench.report.published import PUBLISHED_DIR, load_published

ROW_FIELDS = ("model", "method", "rank")


def published_rows(paper: str) -> dict[str, list[dict]]:
    return load_published(paper)


def fake_run(runs: Path, name: str, config: dict, result: dict | None = None, error: dict | None = None) -> Path:
    """A run record as bench.train writes it (test data for the report's matching, not a reported number)."""
    run = runs / name
    config = {"task": {"name": "sst2"}, **config}  # what every run's config carries (the report requires it)
    result = None if result is None else {"train_loss": [[1, 0.5]], **result}
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(json.dumps(config))
    if result is not None:
        (run / "result.json").write_text(json.dumps({"status": "ok", "config": config, **result}))
    if error is not None:
        (run / "error.json").write_text(json.dumps({"status": "failed", **error}))
    return run


# How a page writes the published CSVs' placeholders (the CSVs keep them as data): no model, a model the table does not
# name ('?'), a setting the paper does not state ('key=?').
PAGE_MODEL = {"": "not named (any model)", "LLaMA-2-7B?": "LLaMA-2-7B (inferred: the table names no model)"}
PAGE_SETTING = {"": "–", "batch_size=?": "batch size not stated"}


def test_pages_say_placeholders_in_words():
    from bench.report.labels import model_cell, setting_cell

    assert [model_cell(m) for m in PAGE_MODEL] == list(PAGE_MODEL.values())
    assert [setting_cell(s) for s in PAGE_SETTING] == list(PAGE_SETTING.values())
    assert model_cell("RoBERTa-base") == "RoBERTa-base" and setting_cell("lr=1e-4") == "lr=1e-4"


@pytest.mark.parametrize("paper", PAPERS)
def test_every_published_cell_keeps_its_place_and_missing_runs_are_not_numbers(paper, tmp_path):
    # One small-tier run: it shows in the stand-in block, never in a paper-scale cell.
    fake_run(tmp_path / "runs", "small", {"report": {"paper": paper, "tables": []}, "scale": {"name": "small"},
                                          "model": {"name": "stories260k"}, "method": {"name": "lora", "r": 8}},
             {"metrics": {"acc": 0.5}})
    main(["--paper", paper, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    for table, rows in published_rows(paper).items():
        md = (tmp_path / "out" / paper / f"table{table}.md").read_text()
        body = [line for line in md.split("\n\nCells read")[0].splitlines() if line.startswith("| ") and "---" not in line][1:]
        in_columns = any(r["setting"].startswith("step=") for r in rows)  # MoRA Table 2: steps are columns
        row_keys = list(dict.fromkeys((PAGE_MODEL.get(r["model"], r["model"]), r["method"], r["rank"] or "–",
                                       "–" if in_columns else PAGE_SETTING.get(r["setting"], r["setting"])) for r in rows))
        assert len(body) == len(row_keys), f"{paper} table {table}: {len(body)} rows, published has {len(row_keys)}"
        for line, key in zip(body, row_keys):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert tuple(cells[:4]) == key
        with open(tmp_path / "out" / paper / f"table{table}.csv", newline="") as f:
            written = list(csv.DictReader(f))
        assert len(written) == len(rows), "every published cell appears exactly once"
        key = lambda r: (r["model"], r["method"], r["rank"], r["setting"], r["task"], r["metric"])
        published = {key(r): r["value"] or ("none printed" if r["status"] == "not_reported" else "n/a") for r in rows}
        assert {key(out): out["published"].split(" ± ")[0] for out in written} == published
        no_number = {"not run", "derived", *load(paper).tables.column_status.values()}   # "no experiment", "no public data"
        assert all(out["reproduced"] in no_number for out in written), "no run exists, so no number may appear"


def test_paper_scale_run_fills_its_cell_and_failed_run_says_failed(tmp_path):
    runs = tmp_path / "runs"
    base = {"report": {"paper": "olora", "tables": ["I"]}, "scale": {"name": "paper"}, "model": {"name": "tinyllama-1.1b"},
            "method": {"name": "olora", "r": 32}}
    fake_run(runs, "a", {**base, "task": {"name": "arc_easy"}, "seed": 1}, {"task": "arc_easy", "metrics": {"acc": 0.5}})
    fake_run(runs, "b", {**base, "task": {"name": "arc_easy"}, "seed": 2}, {"task": "arc_easy", "metrics": {"acc": 0.6}})
    fake_run(runs, "c", {**base, "task": {"name": "piqa"}, "seed": 1}, error={"type": "NonFiniteLoss", "message": "nan", "step": 3})
    main(["--paper", "olora", "--runs", str(runs), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "olora" / "tableI.csv", newline="") as f:
        cells = {(r["model"], r["method"], r["rank"], r["task"]): r["reproduced"] for r in csv.DictReader(f)}
    assert cells[("TinyLlama-1.1B", "OLoRA", "32", "Arc-E")] == "55.00 ± 7.07"
    assert cells[("TinyLlama-1.1B", "OLoRA", "32", "PIQA")] == "failed"
    assert cells[("TinyLlama-1.1B", "LoRA", "32", "Arc-E")] == "not run"
    readme = (tmp_path / "out" / "olora" / "README.md").read_text()
    assert "Failed runs" in readme and "c" in readme.split("Failed runs")[1]


def test_a_pooled_run_fills_every_benchmark_it_scored_with_the_generation_accuracy(tmp_path):
    """OLoRA Table I: one run trained on the pooled collection, scored on six benchmarks (task.eval_tasks), fills
    each benchmark's column with LLM-Adapters' generation accuracy (gen_acc), not lm-eval's acc beside it."""
    runs = tmp_path / "runs"
    base = {"report": {"paper": "olora", "tables": ["I"]}, "scale": {"name": "paper"}, "model": {"name": "opt-1.3b"},
            "method": {"name": "lora", "r": 64}, "task": {"name": "commonsense_170k"}}
    for seed, gen in ((1, 0.40), (2, 0.50)):
        fake_run(runs, f"s{seed}", {**base, "seed": seed},
                 {"task": "commonsense_170k", "eval_tasks": {"boolq": {"n": 500}, "piqa": {"n": 500}},
                  "metrics": {"eval_loss": 1.0, "boolq/gen_acc": gen, "boolq/acc": 0.9, "piqa/gen_acc": 0.7,
                              "piqa/acc": 0.1}})
    main(["--paper", "olora", "--runs", str(runs), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "olora" / "tableI.csv", newline="") as f:
        cells = {(r["model"], r["method"], r["rank"], r["task"]): r["reproduced"] for r in csv.DictReader(f)}
    assert cells[("OPT-1.3B", "LoRA", "64", "BoolQ")] == "45.00 ± 7.07"
    assert cells[("OPT-1.3B", "LoRA", "64", "PIQA")] == "70.00 ± 0.00"
    assert cells[("OPT-1.3B", "LoRA", "64", "Arc-E")] == "not run", "a benchmark the run did not score stays empty"


def test_committed_results_regenerate_byte_identically_from_their_records(tmp_path):
    """`make report` on a fresh clone: the committed records alone give back every committed page and figure."""
    committed = Path(__file__).resolve().parents[1] / "results"
    out = tmp_path / "results"
    shutil.copytree(committed, out)
    main(["--runs", str(tmp_path / "no-runs"), "--out", str(out)])
    files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert any(f.parts[1:2] == ("records",) for f in files)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    for rel in files:
        assert (out / rel).read_bytes() == (committed / rel).read_bytes(), rel


def test_zero_records_is_an_error_and_writes_nothing(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["--runs", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("mutate,expected", [
    (lambda row: row.__setitem__("value", "12,5"), "value='12,5' is not a number"),
    (lambda row: row.__setitem__("paper", "lora"), "paper='lora'; valid: 'mora'"),
    (lambda row: row.__setitem__("metric", ""), "metric is empty"),
])
def test_malformed_published_row_is_refused_with_one_line(mutate, expected, tmp_path):
    for path in PUBLISHED_DIR.glob("mora_table2.csv"):
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / "mora_table2.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    mutate(rows[3])
    with open(tmp_path / "mora_table2.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(UserError) as err:
        load_published("mora", tmp_path)
    assert "\n" not in str(err.value) and "mora_table2.csv line 5" in str(err.value) and expected in str(err.value)


def test_an_unwritable_out_is_one_line_exit_2(tmp_path, capsys):
    committed = Path(__file__).resolve().parents[1] / "results"
    out = tmp_path / "results"
    shutil.copytree(committed / "cola" / "records", out / "cola" / "records")
    (out / "cola" / "README.md").mkdir()  # where the page goes sits something it cannot replace (root or not)
    with pytest.raises(SystemExit) as exit_:
        main(["--runs", str(tmp_path / "none"), "--out", str(out), "--paper", "cola"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: --out=") and "valid: a directory you can write" in err[0]


def test_fig7_columns_are_keyed_by_path_so_robertas_three_dense_modules_stay_apart():
    from bench.papers.salora import PAPER_MODULES, _layer_and_path

    names = [f"roberta.encoder.layer.{i}.{path}" for i in (0, 11) for path in (
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense")]
    cells = {_layer_and_path(name) for name in names}
    assert len(cells) == 12
    assert {PAPER_MODULES[path] for layer, path in cells if layer == 0} == {"Wq", "Wk", "Wv", "Wo", "Wu", "Wd"}


def test_colas_ablation_rows_fill_from_paper_scale_runs_and_flops_sum_over_seeds(tmp_path):
    """COLA Tables 3-4 name no model in the text read: a row without one takes any model's runs; the step-down runs
    fill the COLA rows of their task (Table 3's columns: the three step-down tasks) by their 8->r rank, chain length 1
    (plain LoRA) the LoRA row; FLOPs add up over seeds."""
    def config(seed, ranks, knots):
        return {"report": {"paper": "cola", "tables": [3, 4]}, "scale": {"name": "paper"}, "task": {"name": "cb"},
                "model": {"name": "opt-1.3b"}, "seed": seed,
                "method": {"name": "cola", "r": 8, "ranks": ranks, "knots": knots}}
    for seed in (1, 2):
        fake_run(tmp_path / "runs", f"down{seed}", config(seed, [8, 2], [0.6]),
                 {"task": "cb", "metrics": {"acc": 0.70 + 0.02 * seed}, "train_flops": 1e15, "trainer_flos": 3e15})
        fake_run(tmp_path / "runs", f"lora{seed}", config(seed, None, []),
                 {"task": "cb", "metrics": {"acc": 0.60}, "train_flops": 2e15, "trainer_flos": 3.5e15})
    main(["--paper", "cola", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "cola" / "table3.csv", newline="") as f:
        table3 = {(r["method"], r["rank"], r["task"]): r["reproduced"] for r in csv.DictReader(f)}
    assert table3[("COLA", "8->2", "CB")] == "73.00 ± 1.41" and table3[("LoRA", "8", "CB")] == "60.00 ± 0.00"
    assert table3[("COLA", "8->4", "CB")] == "not run" and table3[("COLA", "8->2", "WSC")] == "not run"
    with open(tmp_path / "out" / "cola" / "table4.csv", newline="") as f:
        table4 = {(r["method"], r["rank"]): r["reproduced"] for r in csv.DictReader(f)}
    # the trainer state's count at paper scale
    assert table4[("COLA", "8->2")] == "6e+15 (sum of 2 seeds)" and table4[("LoRA", "8")] == "7e+15 (sum of 2 seeds)"


def test_a_searched_grid_reports_the_setting_its_selection_metric_picks(tmp_path):
    """COLA's protocol: per cell, the lr × batch setting with the lowest mean dev loss over seeds, and its test score —
    not the best test score."""
    select = {"over": ["trainer.learning_rate", "trainer.per_device_train_batch_size"], "by": "final.eval_loss",
              "direction": "less"}
    for lr, dev_loss, acc in ((1e-4, 0.50, 0.70), (1e-3, 0.60, 0.90)):   # the better dev loss has the worse test
        for seed in (1, 2):
            cfg = {"report": {"paper": "cola", "tables": [1], "select": select}, "scale": {"name": "paper"},
                   "task": {"name": "rte"}, "model": {"name": "opt-1.3b"}, "seed": seed,
                   "trainer": {"learning_rate": lr, "per_device_train_batch_size": 8},
                   "method": {"name": "cola", "r": 8, "knots": [0.6]}}
            fake_run(tmp_path / "runs", f"lr{lr}-s{seed}", cfg,
                     {"task": "rte", "metrics": {"acc": acc + 0.01 * seed, "eval_loss": dev_loss}})
    main(["--paper", "cola", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "cola" / "table1.csv", newline="") as f:
        cell = next(r["reproduced"] for r in csv.DictReader(f) if r["method"] == "COLA" and r["task"] == "RTE"
                    and r["model"] == "OPT-1.3B")
    assert cell == "71.50 ± 0.71 [lr 0.0001, batch 8 of 2, by final.eval_loss]"


def test_salora_fig6_draws_the_ablation_runs_of_every_task(tmp_path, monkeypatch):
    """Paper scale: Fig. 6 from the ablation's CoLA, STS-B and MRPC SaLoRA runs (tagged fig6), one line per task."""
    from bench.papers import salora
    from bench.report import figures
    from bench.report.records import Run

    runs = []
    for task in ("cola", "mrpc", "stsb"):
        cfg = {"report": {"paper": "salora", "tables": [3, "fig6"]}, "scale": {"name": "paper"}, "seed": 1,
               "task": {"name": task}, "model": {"name": "roberta-base"},
               "method": {"name": "salora", "target_density": 0.5, "t_start": 0.1, "t_end": 0.4}}
        rows = [{"step": s, "density": 0.92 - 0.04 * s, "lambda": 0.1 * s, "orth_A": 10 ** -s, "orth_B": 10 ** -s}
                for s in range(1, 6)]
        runs.append(Run(tmp_path / f"{task}.json", "ok", {"config": cfg}, rows=rows))
    labels = []
    real_plot = figures.plt.Axes.plot
    monkeypatch.setattr(figures.plt.Axes, "plot",
                        lambda self, *a, **k: labels.append(k.get("label")) or real_plot(self, *a, **k))
    assert salora.fig6(runs, tmp_path / "fig6.png") and (tmp_path / "fig6.png").stat().st_size > 0
    assert set(labels) == {"cola, b 0.5", "mrpc, b 0.5", "stsb, b 0.5"}


def test_moras_table1_reads_each_benchmark_from_the_run_that_scored_it(tmp_path):
    """MoRA Table 1's columns are (category, benchmark): a MetaMath run fills GSM8K (its own eval) and MATH (scored
    after training), a Tülu v2 run fills MMLU at 0 and 5 shots; neither fills the other's columns."""
    runs = tmp_path / "runs"
    base = {"report": {"paper": "mora", "tables": ["1"]}, "scale": {"name": "paper"}, "model": {"name": "llama2-7b"},
            "method": {"name": "lora", "r": 8}, "seed": 1}
    fake_run(runs, "math", {**base, "task": {"name": "metamath"}},
             {"task": "metamath", "eval_tasks": {"math": {"n": 5000}},
              "metrics": {"exact_match": 0.6, "math/exact_match": 0.15}})
    fake_run(runs, "tulu", {**base, "task": {"name": "tulu_v2"}},
             {"task": "tulu_v2", "eval_tasks": {"mmlu_0shot": {"n": 14042}, "mmlu_5shot": {"n": 14042}},
              "metrics": {"eval_loss": 1.2, "mmlu_0shot/acc": 0.5, "mmlu_5shot/acc": 0.52}})
    main(["--paper", "mora", "--runs", str(runs), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "mora" / "table1.csv", newline="") as f:
        cells = {(r["method"], r["rank"], r["metric"]): r["reproduced"] for r in csv.DictReader(f)}
    assert cells[("LoRA", "8", "GSM8K")] == "60.00"
    assert cells[("LoRA", "8", "MATH")] == "15.00"
    assert cells[("LoRA", "8", "MMLU_0shot")] == "50.00"
    assert cells[("LoRA", "8", "MMLU_5shot")] == "52.00"
    assert cells[("LoRA", "8", "BioMed")] == "not run"


def test_each_page_names_the_commits_behind_its_records(tmp_path):
    from bench.report.page import describe_code
    from bench.report.records import Run

    runs = [Run(tmp_path / f"r{i}.json", "ok", {"git_sha": sha}) for i, sha in
            enumerate(["74797ca0123", "74797ca0123", "3695e5a9999", None])]
    assert describe_code(runs) == ("Code behind these records (each run's commit, `git show <commit>`): "
                                   "74797ca (2 runs), 3695e5a (1 run), unknown (1 run).")
    assert describe_code([]) == "Code behind these records: none."


def test_salora_fig4_at_the_small_tier_draws_the_sweep_with_the_ablations_r8_and_the_held_out_loss(tmp_path, monkeypatch):
    """Small tier: Fig. 4's sweep runs r 2/4/16 on the corpus; r 8 is salora_ablation_small's LoRA and SaLoRA (the same
    training), drawn beside them; the corpus runs have no accuracy, so the panel is the held-out loss."""
    from bench.papers import salora
    from bench.report import figures
    from bench.report.records import Run

    def run(experiment, tables, method, r, seed=1):
        cfg = {"report": {"paper": "salora", "tables": tables}, "scale": {"name": "small"}, "seed": seed,
               "task": {"name": "c4"}, "model": {"name": "stories260k"},
               "method": {"name": method, "r": r, **({"target_density": 0.5, "beta": 0.1} if method == "salora" else {})}}
        metrics = {"eval_loss": 2.5 + r / 100, **({"density": 0.5} if method == "salora" else {})}
        return Run(tmp_path / f"{experiment}-{method}-{r}.json", "ok",
                   {"config": cfg, "experiment": experiment, "metrics": metrics}, rows=[])

    runs = [run("salora_sweeps_small", ["fig4"], m, r) for m in ("lora", "salora") for r in (2, 4, 16)]
    runs += [run("salora_ablation_small", [1, 3], m, 8) for m in ("lora", "salora")]
    drawn = []
    real_plot = figures.plt.Axes.plot
    monkeypatch.setattr(figures.plt.Axes, "plot",
                        lambda self, xs, ys, *a, **k: drawn.append((k.get("label"), list(xs), self.get_ylabel()))
                        or real_plot(self, xs, ys, *a, **k))
    assert salora.fig4(runs, tmp_path / "fig4.png")
    score_lines = {label: xs for label, xs, _ in drawn if label in ("c4, LoRA", "c4, SaLoRA b 0.5")}
    assert score_lines == {"c4, LoRA": [2, 4, 8, 16], "c4, SaLoRA b 0.5": [2, 4, 8, 16]}
