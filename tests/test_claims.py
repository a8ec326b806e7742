"""The claim statistic on synthetic records: a known effect is held, none is inconclusive, the opposite is
contradicted; the interval is Student's t written out here, not taken from the code under test."""

import math
import statistics

import pytest

from bench.report.claims import Claim, evaluate_claim, metric_of, paired_values

T_975 = {4: 2.7764451051977987, 2: 4.302652729911275}  # scipy.stats.t.ppf(0.975, df), tabulated


def runs(effect: float, noise: list[float], metric: str = "acc"):
    """Five seeds: arm b gets a seed-dependent base, arm a the same base + effect + noise (paired by seed)."""
    out = []
    for seed, eps in enumerate(noise, start=1):
        base = 0.5 + 0.05 * seed  # a large between-seed spread that pairing must remove
        out.append(({"method": {"name": "b"}, "seed": seed}, {"metrics": {metric: base}}))
        out.append(({"method": {"name": "a"}, "seed": seed}, {"metrics": {metric: base + effect + eps}}))
    return out


def outcome(claim, records):
    values = paired_values(claim, records, lambda r: metric_of(r[1], [], claim.metric), lambda r: r[0])
    return evaluate_claim(claim, values)


CLAIM = Claim("c", "Table 1", "a beats b", "exp", "final.acc", ({"method.name": "a"}, {"method.name": "b"}))
NOISE = [0.01, -0.01, 0.005, -0.004, 0.0]


def test_known_effect_is_held_with_the_t_interval_written_out():
    o = outcome(CLAIM, runs(0.05, NOISE))
    diffs = [0.05 + e for e in NOISE]
    half = T_975[4] * statistics.stdev(diffs) / math.sqrt(5)
    assert o.verdict == "held" and o.n == 5
    assert o.mean == pytest.approx(statistics.fmean(diffs))
    assert (o.low, o.high) == pytest.approx((statistics.fmean(diffs) - half, statistics.fmean(diffs) + half))


def test_no_effect_is_inconclusive_and_says_nothing_would_resolve_zero():
    o = outcome(CLAIM, runs(0.0, [0.01, -0.01, 0.01, -0.01, 0.0]))
    assert o.verdict == "inconclusive" and o.low < 0 < o.high
    assert o.seeds_to_resolve is None


def test_small_noisy_effect_is_inconclusive_with_a_seed_estimate():
    o = outcome(CLAIM, runs(0.004, [0.01, -0.01, 0.008, -0.006, 0.002]))
    assert o.verdict == "inconclusive" and o.seeds_to_resolve is not None and o.seeds_to_resolve > 5


def test_opposite_effect_is_contradicted():
    assert outcome(CLAIM, runs(-0.05, NOISE)).verdict == "contradicted"


def test_less_direction_and_unpaired_runs_are_ignored():
    claim = Claim("l", "Fig. 2", "a has lower loss", "exp", "final.acc", CLAIM.arms, direction="less")
    records = runs(-0.05, NOISE) + [({"method": {"name": "a"}, "seed": 99}, {"metrics": {"acc": 5.0}})]
    o = outcome(claim, records)
    assert o.verdict == "held" and o.n == 5


def test_one_arm_within_a_band():
    claim = Claim("w", "Sec. 3", "density reaches b", "exp", "gap.density", ({"method.name": "s"},),
                  direction="within", margin=0.02)
    def rec(seed, density):
        return ({"method": {"name": "s"}, "seed": seed},
                {"metrics": {"density": density}, "config": {"method": {"target_density": 0.5}}})
    assert outcome(claim, [rec(s, 0.5 + d) for s, d in enumerate([0.001, -0.002, 0.0, 0.001, 0.002])]).verdict == "held"
    assert outcome(claim, [rec(s, 0.7 + d) for s, d in enumerate([0.001, -0.002, 0.0])]).verdict == "contradicted"
    assert outcome(claim, [rec(s, 0.5 + d) for s, d in enumerate([0.03, -0.03, 0.01])]).verdict == "inconclusive"


def test_an_exact_identity_is_held_and_its_p_value_agrees():
    """Zero spread (OLoRA's trainable parameters equal LoRA's in every pair): the interval [0, 0] lies in the closed
    band [-0, 0], and the one-sided p-values say so too, so Holm can count it; an exact miss is contradicted."""
    claim = Claim("same", "Abstract", "a trains as many parameters as b", "exp", "result.trainable_params",
                  CLAIM.arms, direction="within", margin=0.0)
    def rec(arm, seed, n):
        return ({"method": {"name": arm}, "seed": seed}, {"trainable_params": n})
    same = outcome(claim, [rec(arm, s, 46240) for s in (1, 2, 3) for arm in ("a", "b")])
    assert (same.verdict, same.low, same.high, same.p_held, same.p_contradicted) == ("held", 0, 0, 0.0, 1.0)
    off = outcome(claim, [rec("a", s, 46241) for s in (1, 2, 3)] + [rec("b", s, 46240) for s in (1, 2, 3)])
    assert (off.verdict, off.p_held, off.p_contradicted) == ("contradicted", 1.0, 0.0)


def test_curve_metrics_read_the_logged_rows():
    rows = [{"step": 10, "eval_loss": 4.0}, {"step": 20, "eval_loss": 2.0}, {"step": 30, "eval_loss": 0.4},
            {"step": 30, "lambda": 1.0}]
    assert metric_of({}, rows, "first.eval_loss") == 4.0
    assert metric_of({}, rows, "last.eval_loss") == 0.4
    assert metric_of({}, rows, "mean.eval_loss") == pytest.approx(6.4 / 3)
    assert metric_of({}, rows, "log10drop.eval_loss") == pytest.approx(1.0)
    assert metric_of({"delta_sv_gt_0.1": {"a": 2, "b": 4}}, [], "svmean.delta_sv_gt_0.1") == 3.0
    modules = {"metrics": {"rank_pattern": {f"m{i}": 8 for i in range(4)}}}   # a penalty summed over 4 modules
    assert metric_of(modules, rows, "log10permodule.eval_loss") == pytest.approx(-1.0)   # log10(0.4 / 4)
    assert metric_of({}, rows, "log10permodule.eval_loss") is None   # no modules named: nothing to divide by
    assert metric_of({"steps": 40}, rows, "mid.eval_loss") == 2.0   # the logged step nearest 40 / 2
    assert metric_of({"steps": 60}, rows, "mid.eval_loss") == 0.4
    with pytest.raises(ValueError, match="unknown kind"):
        metric_of({}, rows, "median.eval_loss")


# ------------------------------------------------------------------------------------------------- the engine's rules
def arm_runs(values: dict[str, list[float]], experiment: str = "exp_small", extra: dict | None = None):
    """Runs of several arms over seeds: {arm name: [value per seed]}."""
    return [({"method": {"name": arm}, "seed": seed, **(extra or {})}, {"metrics": {"acc": v}, "experiment": experiment})
            for arm, vals in values.items() for seed, v in enumerate(vals, start=1)]


def tiered(claim, records, tier="small"):
    values = paired_values(claim, records, lambda r: metric_of(r[1], [], claim.metric), lambda r: r[0], tier=tier,
                           experiment_of=lambda r: r[1].get("experiment"),
                           value_of_expr=lambda r, expr: metric_of(r[1], [], expr))
    return evaluate_claim(claim, values, tier)


def test_a_difference_of_differences_weighs_every_arm_per_seed():
    arms = ({"method.name": "remora"}, {"method.name": "mora"}, {"method.name": "relora"}, {"method.name": "lora"})
    claim = Claim("did", "Table 3", "ReMoRA's gain over MoRA exceeds ReLoRA's over LoRA", "exp", "final.acc", arms,
                  ("ReMoRA", "MoRA", "ReLoRA", "LoRA"), weights=(1, -1, -1, 1))
    records = arm_runs({"remora": [5, 6, 7], "mora": [1, 1, 1], "relora": [2, 2, 2], "lora": [1, 2, 3]})
    o = tiered(claim, records)
    assert o.values == [(5 - 1) - (2 - 1), (6 - 1) - (2 - 2), (7 - 1) - (2 - 3)]   # written out per seed
    assert o.n == 3 and o.verdict == "held"


def test_only_the_claims_experiments_at_the_tier_feed_it():
    claim = Claim("exp-only", "T", "a beats b", "exp", "final.acc", CLAIM.arms)
    mine = arm_runs({"a": [0.6, 0.7, 0.65], "b": [0.5, 0.55, 0.6]})
    other = arm_runs({"a": [0.0] * 5, "b": [1.0] * 5}, experiment="other_small")
    paper = arm_runs({"a": [0.0] * 3, "b": [1.0] * 3}, experiment="exp")
    assert tiered(claim, mine + other + paper).values == pytest.approx([0.1, 0.15, 0.05])
    assert tiered(claim, mine + other + paper, tier="paper").verdict == "contradicted"
    pooled = Claim("pooled", "T", "a beats b", "exp", "final.acc", CLAIM.arms, experiments=("other",))
    with pytest.raises(Exception, match="several runs"):   # two experiments, one seed each arm: never silently one
        tiered(pooled, mine + other)


def test_a_searched_grid_reads_each_arms_selected_setting():
    select = {"report": {"select": {"over": ["trainer.learning_rate"], "by": "final.acc", "direction": "greater"}}}
    records = []
    for lr, bonus in ((1e-4, 0.0), (3e-4, 0.2)):   # a's best setting is 3e-4; b is flat
        for cfg, result in arm_runs({"a": [0.5, 0.6, 0.55], "b": [0.5, 0.5, 0.5]}, experiment="exp"):
            cfg = {**cfg, **select, "trainer": {"learning_rate": lr}}
            bump = bonus if cfg["method"]["name"] == "a" else 0.0
            records.append((cfg, {**result, "metrics": {"acc": result["metrics"]["acc"] + bump}}))
    claim = Claim("grid", "T", "a beats b", "exp", "final.acc", CLAIM.arms)
    assert tiered(claim, records, tier="paper").values == pytest.approx([0.2, 0.3, 0.25])


def test_holm_keeps_what_survives_the_step_down_written_out():
    from bench.report.claims import Outcome, holm

    def outcome_with(p: float, verdict: str = "held") -> Outcome:
        return Outcome(CLAIM, 5, 0.1, 0.01, 0.2, verdict, p_held=p)

    # m = 4 at alpha 0.025: thresholds 0.00625, 0.00833, 0.0125, 0.025 for the sorted p-values.
    outcomes = [outcome_with(p) for p in (0.001, 0.008, 0.02, 0.024)]
    holm(outcomes)
    assert [o.survives_holm for o in outcomes] == [True, True, False, False]   # 0.02 > 0.0125 stops the step-down


def test_the_one_sided_p_values_are_the_t_tests_written_out():
    from scipy import stats as scipy_stats

    from bench.report.claims import one_sided_p

    values = [0.05, 0.07, 0.04, 0.06, 0.05]
    t = statistics.fmean(values) / (statistics.stdev(values) / math.sqrt(5))
    held, contradicted = one_sided_p(values, 0.0, "greater")
    assert held == pytest.approx(1 - scipy_stats.t.cdf(t, 4)) and contradicted == pytest.approx(scipy_stats.t.cdf(t, 4))
    assert held < 0.025   # the 95% interval excludes 0: the two agree


# ------------------------------------------------------------------------------------------------- registration
def test_registration_freezes_a_claim_and_a_change_needs_a_dated_reason(tmp_path):
    from dataclasses import replace

    from bench.errors import UserError
    from bench.papers import registry
    from bench.papers.spec import PaperSpec

    spec = PaperSpec("toy", "Toy", 99, {}, {"small": ("exp",)}, (CLAIM,))
    assert registry.problems(spec, tmp_path) == ["toy: claim 'c' differs from its registration (not registered); "
                                                 "register it again with a reason: python -m bench.papers register "
                                                 "toy --reason TEXT"]
    registry.register(spec, directory=tmp_path, results=tmp_path, today="2026-12-01")
    assert registry.problems(spec, tmp_path) == []
    widened = replace(spec, claims=(replace(CLAIM, margin=0.05),))
    assert "(margin)" in registry.problems(widened, tmp_path)[0]          # a margin edited in the spec is caught
    with pytest.raises(UserError, match="changes \\(margin\\)"):
        registry.register(widened, directory=tmp_path, results=tmp_path)
    registry.register(widened, reason="the paper's own precision", directory=tmp_path, results=tmp_path,
                      today="2026-12-02")
    history = registry.load("toy", tmp_path)["c"]
    assert [(e.registered, e.definition["margin"], e.reason) for e in history] == [
        ("2026-12-01", 0.0, ""), ("2026-12-02", 0.05, "the paper's own precision")]
    withdrawn = replace(spec, claims=())
    registry.register(withdrawn, reason="not the paper's claim", directory=tmp_path, results=tmp_path)
    assert registry.load("toy", tmp_path)["c"][-1].definition is None and registry.problems(withdrawn, tmp_path) == []


# ------------------------------------------------------------------------------------------------- paper scale
def test_paper_scale_records_get_verdicts_with_intervals_on_the_page(tmp_path):
    """Synthetic paper-scale records of a claim's experiment: the same engine gives them a verdict and an interval,
    on the page beside the small tier's."""
    import json

    from bench.papers.spec import PaperSpec
    from bench.report.page import report_paper
    from bench.report.records import Run

    claim = Claim("c", "Table 1", "a beats b", "exp", "final.acc", CLAIM.arms, ("A", "B"), unit="accuracy",
                  tier_where={"small": {"method.r": 4}, "paper": {"method.r": 8}})
    spec = PaperSpec("toy", "Toy: paper scale", 99, {}, {"small": ("exp",), "paper": ("exp",)}, (claim,),
                     published_dir=tmp_path)
    runs = []
    for tier, r, experiment in (("small", 4, "exp_small"), ("paper", 8, "exp")):
        for arm, base in (("a", 0.6), ("b", 0.5)):
            for seed in (1, 2, 3):
                cfg = {"method": {"name": arm, "r": r}, "seed": seed, "scale": {"name": tier},
                       "report": {"paper": "toy", "tables": []}, "model": {"name": "m"}, "task": {"name": "t"}}
                noise = 0.003 * (seed % 2) if arm == "a" else 0.0
                result = {"config": cfg, "experiment": experiment, "metrics": {"acc": base + 0.01 * seed + noise},
                          "train_loss": [[1, 1.0]]}
                runs.append(Run(tmp_path / f"{tier}-{arm}-{seed}.json", "ok", result, rows=[]))
    report_paper(spec, runs, tmp_path)
    page = (tmp_path / "toy" / "README.md").read_text()
    assert "At scale=small: the paper's claims: 1 held" in page and "At scale=paper: the paper's claims: 1 held" in page
    assert "### scale=paper: the paper's claims" in page and page.count("| 3 | **held** (Holm) |") == 2
    assert page.count("| 0.102 [0.098, 0.106] |") == 2   # mean (0.103 + 0.1 + 0.103) / 3 and its t-interval
    assert json.dumps(spec.registration()) == "{}"
