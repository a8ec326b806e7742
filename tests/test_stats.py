"""bench.stats, the one statistics module: what claims, the comparison and bench.perf read, against values written
out here (not computed by the code under test)."""

from __future__ import annotations

import math

import pytest

from bench import stats

T_975_DF2 = 4.302652729911275   # scipy.stats.t.ppf(0.975, 2), tabulated


def test_the_t_interval_and_its_edges():
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and (low, high) == pytest.approx((2 - T_975_DF2 / math.sqrt(3), 2 + T_975_DF2 / math.sqrt(3)))
    assert stats.t_interval([5.0]) == (5.0, -math.inf, math.inf)   # one value: no interval
    assert stats.t_interval([4.0, 4.0]) == (4.0, 4.0, 4.0)           # no spread: zero width


@pytest.mark.parametrize("low, high, direction, inclusive, expected", [
    (0.1, 0.3, "greater", False, "held"), (-0.3, -0.1, "greater", False, "contradicted"),
    (-0.1, 0.1, "greater", False, "inconclusive"), (0.0, 0.2, "greater", False, "inconclusive"),
    (-0.3, -0.1, "less", False, "held"), (-0.2, 0.0, "less", False, "inconclusive"),
    (-0.2, 0.0, "less", True, "held"),   # bench.perf: a ratio's interval at or below its limit meets the goal
])
def test_a_verdict_is_where_the_interval_lies_against_the_margin(low, high, direction, inclusive, expected):
    assert stats.verdict(low, high, 0.0, direction, inclusive) == expected


def test_within_a_band():
    assert stats.verdict(-0.01, 0.01, 0.02, "within") == "held"
    assert stats.verdict(0.03, 0.05, 0.02, "within") == "contradicted"
    assert stats.verdict(0.01, 0.03, 0.02, "within") == "inconclusive"


def test_pairs_differences_ties_and_ranks():
    a, b = {3: 1.0, 1: 5.0, 2: 2.0, 9: 7.0}, {1: 4.0, 2: 1.5, 3: 0.0}
    assert stats.paired_differences(a, b) == [1.0, 0.5, 1.0]   # common keys, in key order
    assert stats.ties({1: 1.0}, {1: 0.0})                     # one pair cannot tell
    assert not stats.ties({1: 1.0, 2: 1.1, 3: 0.9}, {1: 0.0, 2: 0.1, 3: -0.1})
    assert stats.ranks({"x": 0.5, "y": 0.9, "z": 0.5}, higher_is_better=True) == {"x": 2.5, "y": 1.0, "z": 2.5}
    assert stats.ranks({"x": 0.5, "y": 0.9}, higher_is_better=False) == {"x": 1.0, "y": 2.0}


def test_the_bootstrap_of_average_ranks_is_reproducible_and_brackets_the_point():
    samples = {"f1": {"a": [0.9, 0.8, 0.85], "b": [0.1, 0.2, 0.15]}, "f2": {"b": [1.0, 1.1], "a": [2.0, 2.1]}}
    first = stats.bootstrap_average_ranks(samples, {"f1": True, "f2": False}, draws=200)
    assert first == stats.bootstrap_average_ranks(samples, {"f1": True, "f2": False}, draws=200)
    assert first["a"][0] == 1.5 and first["b"][0] == 1.5 and first["a"][3] == 2   # a wins f1, b wins f2
    assert all(low <= rank <= high for rank, low, high, _ in first.values())


def test_medians_for_timings():
    assert stats.median_iqr([4.0]) == (4.0, 0.0)
    assert stats.median_iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == (3.0, 3.0)   # quartiles 1.5 and 4.5 (exclusive method)
    values = [float(v) for v in range(1, 41)]
    assert stats.median_interval(values) == (14.0, 27.0)   # n 40: the 14th and 27th order statistics
    assert stats.median_interval([1.0, 2.0, 3.0]) == (-math.inf, math.inf)
    assert stats.paired_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    with pytest.raises(ValueError):
        stats.paired_ratios([1.0], [1.0, 2.0])
