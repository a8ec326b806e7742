"""bench.compare's tuning stage (issue 36 point 4): each arm's setting chosen on a validation split by tuning seeds,
the final seeds at the chosen setting on the test split. On a synthetic records fixture: the choice is the grid point
with the best validation criterion per arm (ties to the family's own setting; failed points never; a cell missing a
seed is pending), the tuned board reads only the final seeds at the chosen setting, the moved-rank view is computed,
and a tuning seed is never a final seed. On the real configs and data: every tuning experiment's grid and arms, the
final run at the family's own setting being the one-rate grid's run, and each task's validation split existing
apart from its test split."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from bench.errors import UserError
from bench.papers.compare import SPEC, TUNING
from bench.report import leaderboard, tuning
from bench.report.records import Run
from bench.sweep.launch import launch_options
from bench.sweep.reproduce import check_seeds
from bench.sweep.smoke import sweep_overrides
from bench.sweep.sweeps import run_id_of, sweep_jobs
from tests.bench_helpers import compose_cfg
from tests.conftest import REPO

FAMILY = {f.key: f for f in SPEC.families}
MEM, PRE = FAMILY["memorisation"], FAMILY["pretraining"]
RATE, RATIO = TUNING.rate_key, "method.lr_ratio"


def _setting(rate: float, ratio: float | None = None) -> tuple:
    return ((RATE, rate),) + (((RATIO, ratio),) if ratio is not None else ())


def _run(arm, budget, seed, value, *, rate, family="memorisation", tune=False, ratio=None, status="ok",
         name=None) -> Run:
    metric = {"memorisation": "char_acc", "pretraining": "perplexity"}[family]
    cfg = {"arm": arm, "compare": {"budget": budget or 8}, "seed": seed, "trainer": {"learning_rate": rate},
           "method": {"name": arm, "r": budget, **({"lr_ratio": ratio} if ratio is not None else {})},
           "report": {"paper": SPEC.name, "tables": [family + ("_tuning" if tune else "")]},
           "task": {"name": "uuid", **({"score_on": "validation"} if tune else {})},
           "model": {"name": "stories260k"}, "scale": {"name": "small"}}
    result = {"config": cfg, "metrics": {metric: value}, "trainable_params": 1000, "wall_s": 10.0,
              "experiment": "compare_uuid_small" + ("_tune" if tune else ""), "status": status}
    path = Path(f"/records/{name or f'{arm}-{budget}-{seed}-{rate}-{ratio}-{tune}'}.json")
    if status != "ok":
        return Run(path, status, {"config": cfg}, rows=[])
    return Run(path, "ok", result, rows=[])


GRID = {("lora", 2): [_setting(3e-3), _setting(1e-2), _setting(3e-2)],
        ("olora", 2): [_setting(3e-3), _setting(1e-2), _setting(3e-2)],
        ("dora", 2): [_setting(3e-3), _setting(1e-2), _setting(3e-2)],
        ("adalora", 2): [_setting(3e-3), _setting(1e-2), _setting(3e-2)],
        ("loraplus", 2): [_setting(r, q) for r in (3e-3, 1e-2, 3e-2) for q in (2.0, 4.0)]}


def _own(arm):
    return _setting(1e-2, 4.0 if arm == "loraplus" else None)


def _tuning_fixture(beyond: bool = True) -> list[Run]:
    """Memorisation (higher is better), tuning seeds 1001 and 1002: lora best at 3e-2 (an edge), olora best at its
    own 1e-2, dora tied between 3e-3 and 1e-2 (the own rate wins), adalora's best point has a failed seed, LoRA+
    best at (3e-3, λ 2)."""
    means = {"lora": {3e-3: 0.10, 1e-2: 0.20, 3e-2: 0.30}, "olora": {3e-3: 0.10, 1e-2: 0.25, 3e-2: 0.05},
             "dora": {3e-3: 0.20, 1e-2: 0.20, 3e-2: 0.10}, "adalora": {3e-3: 0.15, 1e-2: 0.10, 3e-2: 0.90}}
    runs = []
    for arm, by_rate in means.items():
        for rate, mean in by_rate.items():
            for seed, delta in ((1001, -0.01), (1002, 0.01)):
                failed = arm == "adalora" and rate == 3e-2 and seed == 1002
                runs.append(_run(arm, 2, seed, mean + delta, rate=rate, tune=True,
                                 status="failed" if failed else "ok"))
    for rate in (3e-3, 1e-2, 3e-2):
        for ratio in (2.0, 4.0):
            value = 0.5 if (rate, ratio) == (3e-3, 2.0) else 0.2
            runs += [_run("loraplus", 2, seed, value, rate=rate, ratio=ratio, tune=True) for seed in (1001, 1002)]
    # a test-split run and a final seed at a grid point are never read by the selection
    runs.append(_run("olora", 2, 1, 0.99, rate=3e-3))
    return runs + (_beyond_runs() if beyond else [])


# The reduced stage (seed 1001) chooses an edge for lora (3e-2), adalora (3e-2: its failed seed is 1002's) and LoRA+
# (3e-3, λ 2): each tries one ladder step beyond, here losing, so the choices stand and are no longer at an edge.
BEYOND = {("lora", 2): _setting(1e-1), ("adalora", 2): _setting(1e-1), ("loraplus", 2): _setting(1e-3, 2.0)}


def _beyond_runs(values=None) -> list[Run]:
    values = values or {"lora": 0.25, "adalora": 0.5, "loraplus": 0.4}
    return [_run(arm, 2, seed, values[arm], rate=dict(BEYOND[(arm, 2)])[RATE], tune=True,
                 ratio=dict(BEYOND[(arm, 2)]).get(RATIO)) for arm, _ in BEYOND for seed in (1001, 1002)]


def _select(runs, seeds=(1001, 1002)):
    return tuning.select(SPEC, MEM, runs, GRID, seeds, _own)


def test_the_choice_is_the_grid_point_with_the_best_validation_criterion():
    chosen = _select(_tuning_fixture())
    assert chosen[("lora", 2)].setting == _setting(3e-2) and chosen[("lora", 2)].edge and chosen[("lora", 2)].moved
    assert chosen[("olora", 2)].setting == _setting(1e-2) and not chosen[("olora", 2)].moved
    assert not chosen[("olora", 2)].edge
    assert chosen[("dora", 2)].setting == _setting(1e-2)   # an exact tie goes to the family's own setting
    assert chosen[("adalora", 2)].setting == _setting(3e-3)   # its best point failed on one seed: never chosen
    assert chosen[("adalora", 2)].points[2].failed == [1002]
    assert chosen[("loraplus", 2)].setting == _setting(3e-3, 2.0)
    assert all(c.status == "chosen" for c in chosen.values())
    assert chosen[("lora", 2)].criterion == pytest.approx(0.30)


def test_lower_is_better_where_the_family_says_so():
    runs = [_run("lora", 2, s, v, rate=r, tune=True, family="pretraining")
            for r, v in ((1e-3, 30.0), (3e-3, 25.0), (1e-2, 28.0)) for s in (1001,)]
    grid = {("lora", 2): [_setting(1e-3), _setting(3e-3), _setting(1e-2)]}
    chosen = tuning.select(SPEC, PRE, runs, grid, (1001,), lambda arm: _setting(1e-2))
    assert chosen[("lora", 2)].setting == _setting(3e-3) and not chosen[("lora", 2)].edge


def test_a_cell_missing_a_tuning_run_is_pending_and_only_the_stage_seeds_count():
    runs = [r for r in _tuning_fixture() if not (r.cfg["arm"] == "lora" and r.cfg["seed"] == 1002
                                                 and r.cfg["trainer"]["learning_rate"] == 3e-3)]
    chosen = _select(runs)
    assert chosen[("lora", 2)].status == "pending" and chosen[("lora", 2)].setting is None
    assert _select(runs, seeds=(1001,))[("lora", 2)].status == "chosen"   # the reduced stage reads seed 1001 alone
    every_failed = [_run("olora", 2, s, 0.0, rate=r, tune=True, status="failed") for r in (3e-3, 1e-2, 3e-2)
                    for s in (1001, 1002)]
    assert _select(every_failed)[("olora", 2)].status == "failed"


def test_a_run_tagged_for_tuning_but_scored_on_the_test_split_is_an_error():
    bad = _run("lora", 2, 1001, 0.1, rate=1e-2, tune=True)
    del bad.result["config"]["task"]["score_on"]
    with pytest.raises(UserError, match="not scored on a validation split"):
        _select([bad])


ONE_RATE = {"loraplus": 0.50, "olora": 0.45, "dora": 0.40, "adalora": 0.35, "lora": 0.30}   # ranks 1..5
TUNED = {"lora": 0.60, "loraplus": 0.55, "adalora": 0.52}   # the arms that moved; olora and dora chose their own


def _finals(chosen) -> list[Run]:
    """Final seeds 1-3: every cell's one-rate runs at the family's own setting and, for each arm that moved, its
    runs at the chosen setting (where the choice is the own setting the final runs are the one-rate runs)."""
    runs = []
    for (arm, budget), choice in chosen.items():
        settings = [(_own(arm), ONE_RATE[arm])] + ([(choice.setting, TUNED[arm])] if choice.moved else [])
        for setting, value in settings:
            d = dict(setting)
            runs += [_run(arm, budget, seed, value + 0.002 * seed, rate=d[RATE], ratio=d.get(RATIO))
                     for seed in (1, 2, 3)]
    return runs


def test_the_tuned_board_reads_only_the_final_seeds_at_the_chosen_setting():
    tuning_runs = _tuning_fixture()
    chosen = _select(tuning_runs)
    runs = tuning_runs + _finals(chosen)
    tuned = tuning.board_runs(SPEC, MEM, runs, chosen)
    assert len(tuned) == 5 * 3 and all(r.cfg["seed"] in (1, 2, 3) for r in tuned)
    assert not any(tuning.is_tuning_run(SPEC, r) for r in tuned)
    for run in tuned:
        choice = chosen[(run.cfg["arm"], 2)]
        assert tuning.same(tuning.setting_of(run.cfg, TUNING.keys_of(run.cfg["arm"])), choice.setting)
    one_rate = tuning.board_runs(SPEC, MEM, runs)   # the family's own setting (composed from compare_uuid_small)
    assert len(one_rate) == 5 * 3 and {r.cfg["trainer"]["learning_rate"] for r in one_rate} == {1e-2}
    assert {r.cfg["method"]["lr_ratio"] for r in one_rate if r.cfg["arm"] == "loraplus"} == {4.0}
    # where the choice is the own setting, both boards read the same runs
    for arm in ("olora", "dora"):
        assert {r.path for r in one_rate if r.cfg["arm"] == arm} == {r.path for r in tuned if r.cfg["arm"] == arm}
    cells = leaderboard.cells_of(SPEC, MEM, runs, chosen)
    assert sorted(cells[("lora", 2)].values) == [1, 2, 3] and cells[("lora", 2)].mean == pytest.approx(0.604)


def test_a_board_run_at_a_tuning_seed_is_refused():
    chosen = _select(_tuning_fixture())
    stray = _run("lora", 2, 1001, 0.5, rate=3e-2)   # a test-split run at a tuning seed
    with pytest.raises(UserError, match="tuning seed"):
        tuning.board_runs(SPEC, MEM, [stray], chosen)
    with pytest.raises(UserError, match="tuning seed"):
        tuning.board_runs(SPEC, MEM, [_run("lora", 2, 1002, 0.5, rate=1e-2)])


def test_the_moved_rank_view_compares_both_boards_over_the_same_cells():
    chosen = _select(_tuning_fixture())
    runs = _tuning_fixture() + _finals(chosen)
    one = {f.key: leaderboard.cells_of(SPEC, f, runs) if f is MEM else {} for f in SPEC.families}
    tuned = {f.key: leaderboard.cells_of(SPEC, f, runs, chosen) if f is MEM else {} for f in SPEC.families}
    moves = tuning.rank_moves(SPEC, one, tuned, 2)
    assert {arm: (a, b) for arm, (a, b, _) in moves.items()} == {
        "loraplus": (1.0, 2.0), "olora": (2.0, 4.0), "dora": (3.0, 5.0), "adalora": (4.0, 3.0), "lora": (5.0, 1.0)}
    assert all(n == 1 for _, _, n in moves.values())
    # an arm with runs on one board only is left out of both (the same cells on each side)
    del tuned["memorisation"][("adalora", 2)]
    assert "adalora" not in tuning.rank_moves(SPEC, one, tuned, 2)
    assert tuning.rank_moves(SPEC, one, tuned, 2)["lora"] == (4.0, 1.0, 1)


def test_the_page_shows_the_choices_the_tuned_board_and_the_moves(tmp_path):
    stage = tuning.choices_of(SPEC, "small", _tuning_fixture())["memorisation"]   # the reduced stage's choices
    runs = _tuning_fixture() + _finals({cell: c for cell, c in stage.items() if cell in GRID})
    leaderboard.render(SPEC, runs, tmp_path, perf_path=tmp_path / "none.json")
    page = (tmp_path / "README.md").read_text()
    assert "## How each arm was tuned" in page and "## The tuned boards" in page
    assert "## One shared learning rate per family (the second view)" in page
    assert "The board is the tuned one" in page   # every one-rate cell has its final seeds on the tuned board
    chosen_table = page[page.index("### Chosen settings"):page.index("### How ranks moved")]
    row = next(line for line in chosen_table.splitlines() if line.startswith("| LoRA | "))
    assert row.split(" | ")[1] == "0.03"   # the point beyond (0.1) lost: the choice stands, no longer at an edge
    assert "grid 0.003, 0.01, 0.03; loraplus also method.lr_ratio ∈ {2, 4}; beyond an edge: 0.001 (1 cell), 0.1 (2 cells)." in chosen_table
    assert "| LoRA | 5.0 → 1.0 (+4.0) (1 families) |" in page and "| OLoRA | 2.0 → 4.0 (-2.0) (1 families) |" in page
    tuned_board = page[page.index("## The tuned boards"):page.index("## One shared learning rate")]
    assert "| 1 | **LoRA** | 1,000 | 0.604 ± 0.005 | 3 | **best** |" in tuned_board
    assert "| – | MoRA (sharing) | – | tuning not finished | 0 |  |" in tuned_board
    assert "The reduced stage from scratch" in page and "The full stage from scratch" in page
    csv = (tmp_path / "tuning.csv").read_text().splitlines()
    assert any(line.startswith("memorisation,2,lora,0.03,,,1001,,") and line.endswith(",chosen,yes") for line in csv)
    assert any(line.startswith("memorisation,2,lora,0.1,,yes,1001,,0.25,chosen,") for line in csv)
    boards = (tmp_path / "leaderboard.csv").read_text()
    assert "\ntuned,memorisation,2,lora," in boards and "\none-rate,memorisation,2,lora," in boards


def test_the_final_stage_launches_only_the_arms_that_moved_at_the_final_seeds():
    plan = tuning.final_plan(SPEC, "small", _tuning_fixture())   # the reduced stage: seed 1001's values alone
    assert [exp for exp, _ in plan] == ["compare_uuid_small_final"] * 2
    fixed = {tuple(sorted(f)) for _, f in plan}
    assert {tuple(sorted(("arm=" + ",".join(sorted(f[0][4:].split(","))),) + f[1:])) for _, f in plan} == {
        ("arm=adalora,lora", "compare.budget=2", "trainer.learning_rate=0.03"),
        ("arm=loraplus", "compare.budget=2", "method.lr_ratio=2.0", "trainer.learning_rate=0.003")}, fixed
    jobs = tuning.expand(plan, "small")["compare_uuid_small_final"]
    assert len(jobs) == 3 * 3
    assert {int(dict(o.split("=", 1) for o in job)["seed"]) for job in jobs} == {1, 2, 3}


def test_the_final_run_at_the_own_setting_is_the_one_rate_grids_run():
    grid = run_id_of(["experiment=compare_uuid_small", "scale=small", "arm=loraplus", "compare.budget=2", "seed=1"])
    final = run_id_of(["experiment=compare_uuid_small_final", "scale=small", "arm=loraplus", "compare.budget=2",
                       "seed=1", "trainer.learning_rate=0.01", "method.lr_ratio=4.0"])
    assert grid == final and (REPO / "results" / "compare" / "records" / f"{grid}.json").exists()
    moved = run_id_of(["experiment=compare_uuid_small_final", "scale=small", "arm=loraplus", "compare.budget=2",
                       "seed=1", "trainer.learning_rate=0.03", "method.lr_ratio=4.0"])
    assert moved != grid


def test_tuning_seeds_are_never_final_seeds():
    every_tuning = tuning.tuning_seeds(SPEC)
    assert every_tuning == {1001, 1002} and set(TUNING.seeds["reduced"]) <= set(TUNING.seeds["full"])
    for exp, fixed in SPEC.grid_plan("small"):
        seeds = {int(dict(o.split("=", 1) for o in job)["seed"]) for job in sweep_jobs(exp, ["scale=small", *fixed])}
        assert seeds and not seeds & every_tuning, exp
    for exp, fixed in SPEC.tuning_plan("small"):
        seeds = {int(dict(o.split("=", 1) for o in job)["seed"]) for job in sweep_jobs(exp, ["scale=small", *fixed])}
        assert seeds == set(TUNING.seeds[TUNING.stage]), (exp, fixed)
    with pytest.raises(UserError, match="1002 is a tuning seed"):
        check_seeds(SPEC, launch_options("small", "1,1002", None, None))
    check_seeds(SPEC, launch_options("small", "1,2,4", None, None))


def test_every_tuning_experiment_searches_its_familys_grid_on_a_validation_split():
    ladder = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    for family in SPEC.families:
        base = f"{family.experiment}_small"
        tune = base + TUNING.suffix
        cfg = compose_cfg([f"experiment={tune}", "scale=small"], Path("/tmp/unused"))
        own = compose_cfg([f"experiment={base}", "scale=small"], Path("/tmp/unused"))
        assert cfg.task.score_on == "validation" and list(cfg.report.tables) == [family.key + TUNING.table_suffix]
        grid_arms = set(dict(o.split("=", 1) for o in sweep_overrides(base)[0])["arm"].split(","))
        tune_arms = set(dict(o.split("=", 1) for o in sweep_overrides(tune)[0])["arm"].split(","))
        assert tune_arms | set(TUNING.searched) == grid_arms and not tune_arms & set(TUNING.searched)
        jobs = [dict(o.split("=", 1) for o in job) for job in sweep_jobs(tune, ["scale=small"])]
        rates = sorted({float(job[RATE]) for job in jobs})
        i = min(range(len(ladder)), key=lambda k: abs(ladder[k] - own.trainer.learning_rate))
        assert ladder[i] == pytest.approx(own.trainer.learning_rate)
        assert rates == pytest.approx(ladder[i - 1:i + 2]), (family.key, rates)   # one step below, own, one above
        assert {int(job["seed"]) for job in jobs} == set(TUNING.seeds["full"])
        # the final stage's experiment is its family's: every node that names a run is the same
        final = OmegaConf.to_container(compose_cfg([f"experiment={base}{TUNING.final_suffix}", "scale=small"],
                                                   Path("/tmp/unused")), resolve=False)
        mine = OmegaConf.to_container(own, resolve=False)
        for node in ("method", "model", "task", "trainer", "report", "restarts", "salora_gates", "compare", "seed"):
            assert final.get(node) == mine.get(node), (family.key, node)


def test_no_arm_or_scale_file_sets_a_learning_rate_or_a_sweep():
    """The one-rate board's setting is the family experiment's rate for every arm, and an experiment's sweeper
    params do not depend on the arm (bench/report/tuning.py expand composes them once per experiment)."""
    for folder in ("arm", "scale", "method"):
        for path in (REPO / "conf" / folder).glob("*.yaml"):
            text = path.read_text()
            assert "hydra:" not in text, path
            if folder == "arm":
                # memory settings only (prefix-tuning cannot be checkpointed): nothing that changes what is optimised
                trainer = (yaml.safe_load(text) or {}).get("trainer", {})
                assert set(trainer) <= {"gradient_checkpointing"} and "learning_rate" not in text, path


# ------------------------------------------------------------------------------------------ the data tuned on
def _data(experiment: str, seed: int):
    from bench.tasks import load_task_data

    cfg = compose_cfg([f"experiment={experiment}", "scale=small"], Path("/tmp/unused"))
    return cfg, load_task_data(cfg.task, seed, use_local=cfg.scale.local_data)


@pytest.mark.parametrize("family", ["pretraining", "adaptation", "classification"])
def test_each_validation_split_exists_and_never_overlaps_the_test_split(family):
    from bench.tasks.registry import shared_text

    base = f"{FAMILY[family].experiment}_small"
    cfg, tune = _data(base + TUNING.suffix, 1001)
    texts = lambda rows: {shared_text(r) for r in rows}   # noqa: E731
    assert tune.scored_on == "validation" and tune.withheld > 0 and not tune.dev and not tune.extra_eval
    assert len(tune.eval) == cfg.task.num_validation   # the split exists at its stated size
    assert tune.sources["eval"].startswith("validation: ") and "test withheld" in tune.sources["eval"]
    assert not texts(tune.eval) & texts(tune.train)   # the tuning run never trains on what it is scored on
    assert texts(tune.eval) == texts(_data(base + TUNING.suffix, 1002)[1].eval)   # one split for every tuning seed
    for seed in (1, 2, 3):   # never a final seed's test example; the tuning run trains on a part of what it does
        _, final = _data(base, seed)
        assert final.scored_on == "test" and not texts(tune.eval) & texts(final.eval), seed
        assert texts(tune.train) <= texts(final.train) and texts(tune.eval) <= texts(final.train)


def test_memorisation_tunes_on_pairs_no_final_seed_draws():
    _, tune = _data("compare_uuid_small" + TUNING.suffix, 1001)
    assert tune.scored_on == "validation" and tune.withheld == 0   # its test set is its training set
    assert [r["prompt"] for r in tune.eval] == [r["prompt"] for r in tune.train]
    tuned_keys = {r["prompt"] for seed in TUNING.seeds["full"]
                  for r in _data("compare_uuid_small" + TUNING.suffix, seed)[1].eval}
    final_keys = {r["prompt"] for seed in (1, 2, 3) for r in _data("compare_uuid_small", seed)[1].eval}
    assert len(tuned_keys) == 2 * 64 and len(final_keys) == 3 * 64 and not tuned_keys & final_keys


def test_a_validation_split_is_refused_where_it_cannot_be_carved():
    from omegaconf import open_dict

    from bench.tasks import load_task_data

    cfg = compose_cfg(["experiment=compare_uuid_small" + TUNING.suffix, "scale=small"], Path("/tmp/unused"))
    with open_dict(cfg):
        cfg.task.num_validation = 8
    with pytest.raises(UserError, match="memorisation task"):
        load_task_data(cfg.task, 1001, use_local=True)
    cfg = compose_cfg(["experiment=compare_adapt_small" + TUNING.suffix, "scale=small"], Path("/tmp/unused"))
    with open_dict(cfg):
        cfg.task.num_validation = None
    with pytest.raises(UserError, match="task.num_validation=None"):
        load_task_data(cfg.task, 1001, use_local=True)


def test_make_compare_states_its_compute_then_runs_the_finals_the_tuning_records_ask_for(monkeypatch, capsys, tmp_path):
    from bench.sweep import reproduce

    launched = []
    monkeypatch.setattr(reproduce, "run_sweeps", lambda label, sweeps, runs_dir, env=None: launched.append(
        (label, [(s.experiment, tuple(s.overrides)) for s in sweeps])) or [])
    monkeypatch.setattr(reproduce, "current_runs", lambda spec, runs_dir: _tuning_fixture())
    assert reproduce.run_spec(SPEC, launch_options("small", None, None, None), "compare", tmp_path) == []
    out = capsys.readouterr().out
    assert "compare: - tuning, reduced stage: 438 jobs" in out and "The full stage from scratch" in out
    (first_label, first), (beyond_label, beyond), (final_label, finals) = launched
    assert [exp for exp, _ in first] == [exp for exp, _ in SPEC.plan("small")]
    assert beyond_label == "compare / extension stage" and len(beyond) == 2   # lora+adalora at 0.1; LoRA+ at 1e-3
    assert final_label == "compare / final stage" and {exp for exp, _ in finals} == {"compare_uuid_small_final"}
    assert any("trainer.learning_rate=0.03" in o and "arm=lora,adalora" in o for _, o in finals)


def test_a_choice_at_the_grids_edge_tries_one_ladder_step_beyond_and_chooses_again():
    assert [tuning.ladder_step(r, up) for r, up in ((1e-2, True), (3e-2, True), (3e-3, False), (1e-3, False))] == [
        0.03, 0.1, 0.001, 0.0003]
    with pytest.raises(UserError, match="trainer.learning_rate=0.005 is not on the 1-3-10 ladder"):
        tuning.ladder_step(5e-3, True)
    plan = tuning.extension_plan(SPEC, "small", _tuning_fixture(beyond=False))
    assert {tuple(sorted(f)) for _, f in plan} == {
        ("arm=lora,adalora", "compare.budget=2", "seed=1001", "trainer.learning_rate=0.1"),
        ("arm=loraplus", "compare.budget=2", "method.lr_ratio=2.0", "seed=1001", "trainer.learning_rate=0.001")}
    assert {exp for exp, _ in plan} == {"compare_uuid_small_tune"}
    waiting = tuning.choices_of(SPEC, "small", _tuning_fixture(beyond=False))["memorisation"]
    assert all(waiting[cell].status == "pending" for cell in BEYOND)   # never chosen before its point beyond ran
    assert not [f for _, f in tuning.final_plan(SPEC, "small", _tuning_fixture(beyond=False)) if "lora" in f[0]]
    wins = _tuning_fixture(beyond=False) + _beyond_runs({"lora": 0.9, "adalora": 0.5, "loraplus": 0.4})
    chosen = tuning.choices_of(SPEC, "small", wins)["memorisation"]
    lora = chosen[("lora", 2)]
    assert lora.setting == _setting(1e-1) and lora.chose_extension and lora.edge   # the best may still lie beyond
    assert chosen[("adalora", 2)].setting == _setting(3e-2) and not chosen[("adalora", 2)].edge
    assert chosen[("olora", 2)].extension is None and len(chosen[("olora", 2)].points) == 3
    assert tuning.extension_plan(SPEC, "small", wins) == plan   # one round: a point beyond never asks for another
