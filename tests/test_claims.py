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


def test_curve_metrics_read_the_logged_rows():
    rows = [{"step": 10, "eval_loss": 4.0}, {"step": 20, "eval_loss": 2.0}, {"step": 30, "eval_loss": 0.4},
            {"step": 30, "lambda": 1.0}]
    assert metric_of({}, rows, "first.eval_loss") == 4.0
    assert metric_of({}, rows, "last.eval_loss") == 0.4
    assert metric_of({}, rows, "mean.eval_loss") == pytest.approx(6.4 / 3)
    assert metric_of({}, rows, "log10drop.eval_loss") == pytest.approx(1.0)
    assert metric_of({"delta_sv_gt_0.1": {"a": 2, "b": 4}}, [], "svmean.delta_sv_gt_0.1") == 3.0
    assert metric_of({"steps": 40}, rows, "mid.eval_loss") == 2.0   # the logged step nearest 40 / 2
    assert metric_of({"steps": 60}, rows, "mid.eval_loss") == 0.4
    with pytest.raises(ValueError, match="unknown kind"):
        metric_of({}, rows, "median.eval_loss")
