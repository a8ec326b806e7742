"""A paper's claim as data, and its test: paired differences over seeds, a 95% interval, one of three verdicts.

A ``Claim`` names the experiment whose runs test it, a metric (an expression read off each run record, see
``metric_of``), one or two arms (config selectors) and a direction. Two arms: runs are paired by ``pair_by``
(same seed, same task: same data) and the statistic is the mean of the paired differences arm₀ − arm₁. One arm:
the statistic is the mean of the values themselves, against ``margin``. The interval is Student's t (scipy) at
95%; the verdict:

* **held** — the interval lies entirely on the paper's side (``greater``: above ``margin``; ``less``: below it;
  ``within``: inside [−margin, +margin]);
* **contradicted** — it lies entirely on the other side (for ``within``: entirely outside the band);
* **inconclusive** — anything else, with the number of pairs that would resolve the observed effect at its
  observed spread (``seeds_to_resolve``).

Nothing here knows a paper: the specs in ``bench/papers`` hold the claims; a paper's page shows their outcomes
(``render_claims``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .. import stats

DIRECTIONS = ("greater", "less", "within")
VERDICTS = stats.VERDICTS


@dataclass(frozen=True)
class Claim:
    id: str
    source: str                      # where the paper says it (sentence, table or figure)
    statement: str                   # the paper's claim, in words
    experiment: str                  # the experiment (base name, without the tier suffix) whose runs test it
    metric: str                      # expression read off a run (``metric_of``)
    arms: tuple[dict[str, Any], ...]  # one or two selectors {dotted config key: value}
    arm_labels: tuple[str, ...] = ()
    where: dict[str, Any] = field(default_factory=dict)   # applied to every arm (e.g. {"method.r": 8})
    direction: str = "greater"
    margin: float = 0.0
    pair_by: tuple[str, ...] = ("seed",)
    unit: str = ""
    stand_in: str = ""               # what the small tier tests instead of the paper's setting, in words

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction={self.direction!r}; valid: {list(DIRECTIONS)}")
        if len(self.arms) not in (1, 2):
            raise ValueError(f"claim {self.id}: {len(self.arms)} arms; valid: 1 (against margin) or 2 (paired)")


@dataclass
class Outcome:
    claim: Claim
    n: int
    mean: float | None
    low: float | None
    high: float | None
    verdict: str
    seeds_to_resolve: int | None = None
    values: list[float] = field(default_factory=list)

    @property
    def effect(self) -> str:
        if self.mean is None:
            return "no paired runs"
        return f"{fmt_number(self.mean)} [{fmt_number(self.low)}, {fmt_number(self.high)}]"


def fmt_number(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}" if magnitude >= 1 else f"{x:.3f}"


# ------------------------------------------------------------------------------------------ reading runs
def config_value(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def selects(cfg: dict, selector: dict[str, Any]) -> bool:
    for key, wanted in selector.items():
        value = config_value(cfg, key)
        if isinstance(wanted, (list, tuple)) and not isinstance(value, (list, tuple)):
            if value not in wanted:
                return False
        elif (list(value) if isinstance(value, tuple) else value) != (list(wanted) if isinstance(wanted, tuple) else wanted):
            return False
    return True


def _series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    seen: dict[int, float] = {}
    for row in rows:
        if key in row and "step" in row and row[key] is not None:
            seen[int(row["step"])] = float(row[key])
    return sorted(seen.items())


def metric_of(result: dict, rows: list[dict], expr: str) -> float | None:
    """A number read off one run. ``expr`` is ``kind.key``:

    final.K   result["metrics"][K]            result.K  result[K] (train_flops, trainable_params, …)
    first.K   K at its first logged step      last.K    K at its last logged step
    mean.K    mean of K over its logged steps (the area under the curve per step)
    rise.K    last − first of K               log10drop.K  log10(first / last) of K (orders of magnitude fallen)
    peak.K    max of K over its logged steps  gap.K     final K − the method's target (K=density: b)
    mid.K     K at the logged step nearest the middle of the run (the paper's step-500-of-1000 column)
    svmean.K  mean over modules of result[K] (a per-module dict, e.g. delta_sv_gt_0.1)
    """
    kind, _, key = expr.partition(".")
    if kind == "final":
        value = (result.get("metrics") or {}).get(key)
    elif kind == "result":
        value = result.get(key)
    elif kind == "svmean":
        per_module = result.get(key) or {}
        value = stats.mean(per_module.values()) if per_module else None
    elif kind == "gap":
        target = config_value(result.get("config") or {}, "method.target_density")
        final = (result.get("metrics") or {}).get(key)
        value = None if target is None or final is None else final - target
    else:
        series = [v for _, v in _series(rows, key)]
        if not series:
            return None
        if kind == "first":
            value = series[0]
        elif kind == "last":
            value = series[-1]
        elif kind == "mean":
            value = stats.mean(series)
        elif kind == "peak":
            value = max(series)
        elif kind == "mid":
            middle = (result.get("steps") or 0) / 2
            value = min(_series(rows, key), key=lambda sv: abs(sv[0] - middle))[1]
        elif kind == "rise":
            value = series[-1] - series[0]
        elif kind == "log10drop":
            value = math.log10(series[0] / series[-1]) if series[0] > 0 and series[-1] > 0 else None
        else:
            raise ValueError(f"metric expression {expr!r}: unknown kind {kind!r}; valid: final, result, first, last, "
                             "mean, rise, log10drop, peak, mid, gap, svmean")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ------------------------------------------------------------------------------------------ the test
def paired_values(claim: Claim, runs: Iterable[Any], value_of: Callable[[Any], float | None],
                  config_of: Callable[[Any], dict]) -> list[float]:
    """Per pairing unit (``pair_by``), arm₀ − arm₁ (two arms) or arm₀'s value (one arm)."""
    by_arm: list[dict[tuple, float]] = [{} for _ in claim.arms]
    for run in runs:
        cfg = config_of(run)
        if not selects(cfg, claim.where):
            continue
        for i, arm in enumerate(claim.arms):
            if selects(cfg, arm):
                value = value_of(run)
                if value is not None:
                    by_arm[i][tuple(str(config_value(cfg, k)) for k in claim.pair_by)] = value
    if len(claim.arms) == 1:
        return [by_arm[0][k] for k in sorted(by_arm[0])]
    return stats.paired_differences(by_arm[0], by_arm[1])


def evaluate_claim(claim: Claim, values: list[float]) -> Outcome:
    if not values:
        return Outcome(claim, 0, None, None, None, "inconclusive")
    mean, low, high = stats.t_interval(values)
    result = stats.verdict(low, high, claim.margin, claim.direction)
    needed = stats.pairs_to_resolve(values, claim.margin, claim.direction) if result == "inconclusive" else None
    return Outcome(claim, len(values), mean, low if math.isfinite(low) else None,
                   high if math.isfinite(high) else None, result, needed, values)


# ------------------------------------------------------------------------------------------ on a page
def claim_outcomes(spec: Any, runs: list) -> list[Outcome]:
    """Each claim of the paper's spec, tested on the runs of its tier (paired over seeds, 95% interval)."""
    tier_runs = [r for r in runs if r.status == "ok" and r.scale == spec.claims_tier]
    outcomes = []
    for claim in spec.claims:
        values = paired_values(claim, tier_runs, lambda run: metric_of(run.result, run.metrics_rows(), claim.metric),
                               lambda run: run.cfg)
        outcomes.append(evaluate_claim(claim, values))
    return outcomes


def render_claims(spec: Any, outcomes: list[Outcome], ran: set[str]) -> list[str]:
    lines = [f"## Claims, tested at scale={spec.claims_tier}", "",
             "Each claim: the paired difference over seeds (same seed = same data and initialisation for both arms) "
             "or, for one arm, the value itself; mean with its 95% t-interval. **held**: the interval lies on the "
             "paper's side of the margin; **contradicted**: on the other side; **inconclusive**: it spans it (with "
             "the pairs that would resolve the observed effect at its observed spread).", "",
             "| claim | source | metric | arms | effect [95% CI] | n | verdict |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.claim
        side = {"greater": ">", "less": "<", "within": "within ±"}[c.direction]
        arms = " − ".join(c.arm_labels) if c.arm_labels else "–"
        verdict = f"**{o.verdict}**"
        if o.verdict == "inconclusive":
            verdict += (f" (~{o.seeds_to_resolve} pairs would resolve it)" if o.seeds_to_resolve
                        else " (no runs)" if o.n == 0 else " (no effect to resolve)")
        lines.append(f"| {c.statement} | {c.source} | {c.metric} ({c.unit}), {side} {c.margin:g} | {arms} | "
                     f"{o.effect} | {o.n} | {verdict} |")
    missing = [e for e in spec.experiment_files(spec.claims_tier) if e not in ran]
    if missing:
        lines += ["", f"**Not run for these records:** {', '.join(missing)} — part of `make reproduce-{spec.name}`, but no "
                  f"record of it is committed yet; the claims it tests read \"no runs\"."]
    stand_ins = sorted({o.claim.stand_in for o in outcomes if o.claim.stand_in})
    if stand_ins:
        lines += ["", "Stand-ins (what the small tier runs instead of the paper's setting): " + "; ".join(stand_ins) + "."]
    if spec.notes:
        lines += ["", "What the small tier does not cover, and why:", ""] + [f"- {n}" for n in spec.notes]
    return lines + [""]
