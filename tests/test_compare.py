"""bench.compare: the grid's arms match LoRA's trainable count, every method × family cell runs or says why not, the
leaderboard statistics on synthetic records, the page regenerating byte-identically, glue_source's data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bench import compare
from bench.papers.compare import SPEC
from bench.report import leaderboard
from bench.report.records import Run, load_records
from bench.sweep.smoke import sweep_overrides
from tests.bench_helpers import compose_cfg
from tests.conftest import REPO, SHARED

ARM_FILES = sorted(p.stem for p in (REPO / "conf" / "arm").glob("*.yaml") if not p.stem.startswith("_"))


def trainable_of(arm: str, budget: int, tmp_path: Path) -> int:
    from bench.run.models import count_parameters, load_model, load_tokenizer
    from bench.run.steps import build_method

    cfg = compose_cfg(["experiment=compare_uuid_small", "scale=small", f"arm={arm}", f"compare.budget={budget}"],
                      tmp_path)
    tokenizer = load_tokenizer(cfg.model)
    model = build_method(cfg).apply(load_model(cfg.model, "causal_lm", None, tokenizer))
    return count_parameters(model)[0]


@pytest.mark.parametrize("budget", [2, 8])
def test_every_arm_trains_about_loras_count_at_the_budget(budget, tmp_path):
    lora = trainable_of("lora", budget, tmp_path)
    assert lora == 5780 * budget   # r · Σ(d_in + d_out) over stories260K's 7 projections × 5 layers
    magnitudes = 5 * (64 + 32 + 32 + 64 + 172 + 172 + 64)   # DoRA's extra: one magnitude per output feature
    for arm in ARM_FILES:
        if arm == SPEC.reference:
            continue
        count = trainable_of(arm, budget, tmp_path)
        if arm in ("salora", "adalora"):
            count //= 2   # twice the rank, half of it kept (density / budget ratio 0.5): the kept budget
        if arm == "dora":
            assert count == lora + magnitudes, arm
        elif arm.startswith("mora") or arm == "remora":
            # r̂ = ⌊√((d + k)·r)⌋ per module, rounded down further where the operator needs it (rotation: even
            # blocks): never above LoRA's count, 13.5% below at most (rotation at budget 2)
            assert 0.86 * lora <= count <= lora, (arm, count, lora)
        else:
            assert abs(count - lora) <= 0.06 * lora, (arm, count, lora)   # adapters: biases and integer widths


def test_every_method_of_every_family_runs_or_says_why_not():
    assert set(ARM_FILES) | {arm for arm, _ in SPEC.not_run} == set(SPEC.arms)
    for family in SPEC.families:
        for tier in ("small", "paper"):
            exp = family.experiment + ("" if tier == "paper" else "_small")
            cfg = compose_cfg([f"experiment={exp}", f"scale={tier}"], Path("/tmp/unused"))
            assert list(cfg.report.tables) == [family.key] and cfg.report.paper == SPEC.name
            overrides, _ = sweep_overrides(exp)
            swept = set(dict(o.split("=", 1) for o in overrides)["arm"].split(","))
            for arm in SPEC.arms:
                if arm == SPEC.reference:
                    continue   # run once per seed by make compare / make smoke (SPEC.reference_run)
                blocked = SPEC.not_run_reason(arm, family.key)
                if tier == "paper" and arm == "prefix":
                    blocked = None   # RoBERTa-base takes the suite's encoder prefixes
                assert (arm in swept) != bool(blocked), (exp, arm)


OWN_RATE = {"memorisation": 1.0e-2, "classification": 3.0e-3}   # the one-rate board's (each family experiment's)


def _run(arm: str, budget: int | None, seed: int, value: float, table: str = "memorisation") -> Run:
    cfg = {"arm": arm, "compare": {"budget": budget or 2}, "seed": seed, "trainer": {"learning_rate": OWN_RATE[table]},
           "report": {"paper": SPEC.name, "tables": [table]}, "model": {"name": "stories260k"},
           "task": {"name": "uuid"}, "scale": {"name": "small"}, "method": {"name": arm, "r": budget}}
    result = {"config": cfg, "metrics": {"char_acc": value, "acc": value}, "trainable_params": 1000, "wall_s": 1.0,
              "experiment": "compare_uuid_small", "status": "ok"}
    return Run(Path(f"/records/{arm}-{budget}-{seed}.json"), "ok", result, rows=[])


def test_the_board_marks_the_best_its_statistical_ties_and_ranks_them():
    seeds = (1, 2, 3, 4)
    runs = [_run("lora", 2, s, 0.50 + 0.01 * s) for s in seeds]
    runs += [_run("mora_sharing", 2, s, 0.70 + 0.01 * s + (0.002 if s % 2 else -0.002)) for s in seeds]
    runs += [_run("olora", 2, s, 0.70 + 0.01 * s + (-0.002 if s % 2 else 0.002)) for s in seeds]   # same mean
    runs += [_run("fft", None, s, 0.9) for s in seeds]
    family = SPEC.families[0]
    cells = leaderboard.cells_of(SPEC, family, runs)
    lines, rows = leaderboard.board(SPEC, family, cells, 2)
    marks = {r["arm"]: r["mark"] for r in rows}
    assert marks["fft"] == "reference (all weights)"
    assert {marks["mora_sharing"], marks["olora"]} == {"**best**", "tied"}
    assert marks["lora"] == ""   # 0.2 worse on every seed: the paired interval excludes zero
    ranks = {r["arm"]: r["rank"] for r in rows}
    assert ranks["lora"] == "3" and ranks["fft"] == "–"


def test_average_rank_has_a_reproducible_bootstrap_interval_around_it():
    runs = []
    for table, good in (("memorisation", "mora_sharing"), ("classification", "lora")):
        for s in (1, 2, 3):
            runs.append(_run(good, 2, s, 0.8 + 0.01 * s, table))
            runs.append(_run("olora" if good == "lora" else "lora", 2, s, 0.2 + 0.01 * s, table))
            runs.append(_run("olora" if good != "lora" else "mora_sharing", 2, s, 0.5 + 0.01 * s, table))
    families = [f for f in SPEC.families if f.key in ("memorisation", "classification")]
    cells = {f.key: leaderboard.cells_of(SPEC, f, runs) for f in families}
    first = leaderboard.average_ranks(SPEC, families, cells, 2)
    assert first == leaderboard.average_ranks(SPEC, families, cells, 2)   # fixed generator: the page is byte-stable
    for arm, (rank, low, high, n) in first.items():
        assert low <= rank <= high and n == 2
    # memorisation: MoRA 1, OLoRA 2, LoRA 3; classification: LoRA 1, MoRA 2, OLoRA 3
    assert (first["mora_sharing"][0], first["lora"][0], first["olora"][0]) == (1.5, 2.0, 2.5)


def test_the_page_regenerates_byte_identically_from_the_committed_records(tmp_path):
    committed = REPO / "results" / SPEC.name
    if not (committed / "records").is_dir():
        pytest.fail("results/compare/records is missing: run make compare and commit its records")
    out = tmp_path / "results"
    shutil.copytree(committed, out / SPEC.name)
    shutil.copy(REPO / "results" / "perf.json", out / "perf.json")
    assert compare.main(["--runs", str(tmp_path / "no-runs"), "--out", str(out)]) == 0
    for path in committed.rglob("*"):
        if path.is_file():
            assert (out / SPEC.name / path.relative_to(committed)).read_bytes() == path.read_bytes(), path


@pytest.mark.parametrize("args, named", [
    (["run", "--scale", "huge"], "SCALE='huge' is not valid; valid: tiny, small, paper"),
    (["run", "--seeds", "1;touch x"], "SEEDS='1;touch x' is not valid; valid: a comma list of integers"),
    (["run", "--launcher", "pbs"], "LAUNCHER='pbs' is not valid; valid: basic, joblib, local, slurm"),
    (["run", "--jobs", "0"], "JOBS='0' is not valid; valid: an integer >= 1"),
    (["--family=nosuch"], "unrecognized arguments: --family=nosuch"),
    (["rerun"], "argument action: invalid choice: 'rerun' (choose from 'report', 'run')"),
])
def test_a_bad_option_is_one_line_and_exit_2(args, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        compare.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err


def test_glue_source_is_balanced_and_never_evaluates_a_training_sentence():
    from bench.tasks.corpus import PER_SOURCE, SOURCES, source_records

    train = source_records("train", str(SHARED / "data"))
    held_out = source_records("eval", str(SHARED / "data"))
    assert {r["label"] for r in held_out} == set(range(len(SOURCES)))
    assert all(sum(r["label"] == k for r in held_out) == PER_SOURCE["eval"] for k in range(len(SOURCES)))
    assert not {r["text"] for r in train} & {r["text"] for r in held_out}
    assert json.dumps(held_out[:3]) == json.dumps(source_records("eval", str(SHARED / "data"))[:3])
