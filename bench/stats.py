"""The suite's statistics, in one place: the claims, the comparison's boards and bench.perf's goals all read them.

Seeds are the unit of replication. A paired difference (same seed: same data and initialisation for both arms) is
tested with Student's t interval; ranks tie at their average (scipy's ``rankdata``); the average rank over groups
gets a bootstrap interval from a fixed generator, so a page regenerates byte-identically. Timings, whose spread is
skewed by other tenants of the machine, are summarised by their median with an order-statistic interval instead.
"""

from __future__ import annotations

import math
import statistics
from typing import Hashable, Mapping, Sequence

VERDICTS = ("held", "contradicted", "inconclusive")


# ------------------------------------------------------------------------------------------ location and spread
def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def median_iqr(samples: Sequence[float]) -> tuple[float, float]:
    """The median and the interquartile range (0 for a single sample)."""
    middle = statistics.median(samples)
    if len(samples) < 2:
        return middle, 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return middle, q3 - q1


# ------------------------------------------------------------------------------------------ intervals
def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval; a single value is unbounded, zero spread gives a zero-width interval."""
    from scipy import stats

    center = statistics.fmean(values)
    if len(values) < 2:
        return center, -math.inf, math.inf
    sd = statistics.stdev(values)
    if sd == 0:
        return center, center, center
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return center, center - half, center + half


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the order statistics x_(k) and x_(n+1-k), k the binomial
    quantile, covering the median with at least ``confidence`` (n 40: the 14th and 27th values, 96.2%). Unbounded
    where n is too small for any pair to cover it."""
    from scipy import stats

    ordered = sorted(values)
    k = int(stats.binom.ppf((1 - confidence) / 2, len(ordered), 0.5))  # 1-based index of the lower end
    if k < 1 or len(ordered) + 1 - k < k:  # no pair of order statistics reaches the coverage
        return -math.inf, math.inf
    return ordered[k - 1], ordered[len(ordered) - k]


def verdict(low: float, high: float, margin: float, direction: str, inclusive: bool = False) -> str:
    """Where an interval lies against a margin: "held" on the claimed side (``greater``: above the margin; ``less``:
    below it; ``within``: inside [−margin, +margin]), "contradicted" on the other, "inconclusive" spanning it.
    ``inclusive``: an end exactly at the margin still counts as the claimed side (bench.perf's "at or below")."""
    if direction == "greater":
        return "held" if (low >= margin if inclusive else low > margin) else "contradicted" if high < margin \
            else "inconclusive"
    if direction == "less":
        return "held" if (high <= margin if inclusive else high < margin) else "contradicted" if low > margin \
            else "inconclusive"
    inside = -margin <= low and high <= margin
    outside = low > margin or high < -margin
    return "held" if inside else "contradicted" if outside else "inconclusive"


def pairs_to_resolve(values: Sequence[float], margin: float, direction: str, confidence: float = 0.95) -> int | None:
    """Pairs needed for the t interval at the observed mean and spread to clear the margin (None: never, e.g. a
    zero effect). Rough, as the pages say: the spread is itself estimated."""
    from scipy import stats

    if len(values) < 2:
        return None
    center, sd = statistics.fmean(values), statistics.stdev(values)
    distance = abs(center - margin) if direction != "within" else margin - abs(center)
    if distance <= 0 or sd == 0:
        return None
    for n in range(2, 10_000):
        if stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) < distance:
            return n
    return None


# ------------------------------------------------------------------------------------------ pairs
def paired_differences(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> list[float]:
    """a[k] − b[k] over the keys both have (seeds, or (seed, task) pairs), in key order."""
    return [a[k] - b[k] for k in sorted(set(a) & set(b))]


def ties(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> bool:
    """The paired difference has a 95% interval spanning zero, or there are too few pairs (< 2) to tell."""
    differences = paired_differences(a, b)
    if len(differences) < 2:
        return True
    _, low, high = t_interval(differences)
    return low <= 0 <= high


def paired_ratios(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Each repetition's ratio. One repetition runs every row back to back, so the machine's slow drift (frequency,
    other tenants) divides out of each ratio, where a ratio of two medians taken from different moments keeps it."""
    return [value / ref for value, ref in zip(values, reference, strict=True)]


# ------------------------------------------------------------------------------------------ ranks
def ranks(means: Mapping[str, float], higher_is_better: bool) -> dict[str, float]:
    """Rank 1 = best; ties share the average rank (scipy's rankdata). Arms in name order."""
    from scipy.stats import rankdata

    names = sorted(means)
    sign = -1.0 if higher_is_better else 1.0
    return {name: float(r) for name, r in zip(names, rankdata([sign * means[name] for name in names]))}


def bootstrap_average_ranks(samples: Mapping[str, Mapping[str, Sequence[float]]], higher_is_better: Mapping[str, bool],
                            draws: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float, int]]:
    """arm -> (average rank over the groups it has samples in, bootstrap 2.5%, 97.5%, number of groups).

    ``samples``: group -> arm -> values (one per seed). Each draw resamples every arm's values within every group
    (with replacement), ranks the arms of each group by their resampled means and averages each arm's ranks. The
    generator is drawn from in the mappings' iteration order: the same samples in the same order give the same
    interval, byte for byte."""
    import numpy as np

    arms = sorted({arm for by_arm in samples.values() for arm in by_arm})
    point: dict[str, list[float]] = {arm: [] for arm in arms}
    for group, by_arm in samples.items():
        for arm, r in ranks({a: statistics.fmean(v) for a, v in by_arm.items()}, higher_is_better[group]).items():
            point[arm].append(r)
    rng = np.random.default_rng(seed)
    arrays = {group: {arm: np.array(values) for arm, values in by_arm.items()} for group, by_arm in samples.items()}
    averages: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(draws):
        per_arm: dict[str, list[float]] = {arm: [] for arm in arms}
        for group, by_arm in arrays.items():
            means = {arm: float(v[rng.integers(0, len(v), len(v))].mean()) for arm, v in by_arm.items()}
            for arm, r in ranks(means, higher_is_better[group]).items():
                per_arm[arm].append(r)
        for arm in arms:
            averages[arm].append(statistics.fmean(per_arm[arm]))
    return {arm: (statistics.fmean(point[arm]), float(np.percentile(averages[arm], 2.5)),
                  float(np.percentile(averages[arm], 97.5)), len(point[arm])) for arm in arms}
