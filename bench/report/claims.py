"""A paper's claim as data, and its test: paired differences over seeds, a 95% interval, one of three verdicts.

A ``Claim`` quotes the paper's sentence or table cell it tests and names the experiments whose runs may test it, a
metric (an expression read off each run record, see ``metric_of``), its arms (config selectors) and a direction.
Runs are paired by ``pair_by`` (same seed, same task: same data). One arm: the statistic is the arm's value itself,
against ``margin``. Two arms: arm₀ − arm₁. More arms: Σ wᵢ·armᵢ with the claim's ``weights`` (a difference of two
differences: (ReMoRA − MoRA) − (ReLoRA − LoRA) is weights (1, −1, −1, 1)). A pairing unit counts only when every arm
has a run there. The interval is Student's t at 95%; the verdict:

* **held** — the interval lies entirely on the paper's side (``greater``: above ``margin``; ``less``: below it;
  ``within``: inside [−margin, +margin]);
* **contradicted** — it lies entirely on the other side (for ``within``: entirely outside the band);
* **inconclusive** — anything else, with the number of pairs that would resolve the observed effect at its
  observed spread (``pairs_to_resolve``).

Each outcome also carries the one-sided p-values of its two possible verdicts, so a page can say how many verdicts
survive Holm's correction over a paper's claims (``holm``).

A claim's ``role`` says what it is: ``paper`` — the paper's own statement (on a stand-in model where the tier needs
one); ``proxy`` — a stand-in quantity the paper never states, tested because the paper's own cannot be measured at
that tier (counted apart). Where the runs depart from the paper's setting to make a claim resolvable,
``setting_note`` says how, and ``at_paper_setting`` names the claim that tests the same sentence at the paper's own
setting. At each tier the claim reads the runs of its experiments at that tier (``<experiment>_<tier>``; the paper
scale: ``<experiment>``), with ``tier_where`` adding what differs by tier (the rank a stand-in maps to). Where an
experiment searched a grid (``report.select`` in its config), each arm reads its selected setting, as a paper
reports the best of its search.

Nothing here knows a paper: the specs in ``bench/papers`` hold the claims; a paper's page shows their outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .. import stats
from ..errors import UserError

DIRECTIONS = ("greater", "less", "within")
ROLES = ("paper", "proxy")
VERDICTS = stats.VERDICTS
ALPHA = 0.025   # each side of a 95% interval: a one-sided test at 2.5% agrees with it


@dataclass(frozen=True)
class Claim:
    id: str
    source: str                      # where the paper says it (section, table, figure)
    statement: str                   # what is tested, in words (the metric and arms of this test)
    experiment: str                  # the experiment (base name, without the tier suffix) whose runs test it
    metric: str                      # expression read off a run (``metric_of``)
    arms: tuple[dict[str, Any], ...]  # selectors {dotted config key: value}
    arm_labels: tuple[str, ...] = ()
    where: dict[str, Any] = field(default_factory=dict)   # applied to every arm (e.g. {"task.name": "uuid"})
    direction: str = "greater"
    margin: float = 0.0
    pair_by: tuple[str, ...] = ("seed",)
    unit: str = ""
    stand_in: str = ""               # what the tier tests instead of the paper's setting, in words
    quote: str = ""                  # the paper's own sentence or table cell, verbatim
    role: str = "paper"              # "paper" or "proxy" (module docstring)
    experiments: tuple[str, ...] = ()    # further experiments whose runs may feed it (beside ``experiment``)
    weights: tuple[float, ...] = ()      # per arm (default: (1,) for one arm, (1, −1) for two)
    tier_where: dict[str, dict[str, Any]] = field(default_factory=dict)   # tier -> selectors added at that tier
    seeds: int = 0                   # pairing units the claim was registered with (the planned sample)
    margin_basis: str = ""           # why the margin is what it is
    setting_note: str = ""           # how the runs depart from the paper's setting to make the claim resolvable
    at_paper_setting: str = ""       # the id of the claim testing the same sentence at the paper's own setting

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction={self.direction!r}; valid: {list(DIRECTIONS)}")
        if self.role not in ROLES:
            raise ValueError(f"claim {self.id}: role={self.role!r}; valid: {list(ROLES)}")
        if not self.arms:
            raise ValueError(f"claim {self.id}: no arms; valid: one (against the margin) or more (paired)")
        if self.weights and len(self.weights) != len(self.arms):
            raise ValueError(f"claim {self.id}: {len(self.weights)} weights for {len(self.arms)} arms; valid: one per arm")
        if len(self.arms) > 2 and not self.weights:
            raise ValueError(f"claim {self.id}: {len(self.arms)} arms need weights (e.g. 1, -1, -1, 1)")

    @property
    def arm_weights(self) -> tuple[float, ...]:
        return self.weights or ((1.0,) if len(self.arms) == 1 else (1.0, -1.0))

    @property
    def all_experiments(self) -> tuple[str, ...]:
        return (self.experiment, *self.experiments)

    def experiment_files(self, tier: str) -> set[str]:
        suffix = "" if tier == "paper" else f"_{tier}"
        return {f"{name}{suffix}" for name in self.all_experiments}

    def where_at(self, tier: str) -> dict[str, Any]:
        return {**self.where, **self.tier_where.get(tier, {})}


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
    p_held: float = 1.0              # one-sided p of the paper's side (held)
    p_contradicted: float = 1.0      # one-sided p of the other side (contradicted)
    tier: str = "small"
    survives_holm: bool = False      # its verdict (held or contradicted) survives Holm's correction (``holm``)

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
    log10permodule.K  log10 of K's last logged value over the number of adapted modules (result.metrics.rank_pattern):
              a summed per-module penalty as one module's, so a stand-in's module count does not move it
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
        elif kind == "log10permodule":
            modules = len((result.get("metrics") or {}).get("rank_pattern") or {})
            value = math.log10(series[-1] / modules) if modules and series[-1] > 0 else None
        else:
            raise ValueError(f"metric expression {expr!r}: unknown kind {kind!r}; valid: final, result, first, last, "
                             "mean, rise, log10drop, log10permodule, peak, mid, gap, svmean")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ------------------------------------------------------------------------------------------ the test
class AmbiguousRuns(UserError):
    """An arm has several runs for one pairing unit and no selection rule says which one the paper would report."""


def select_setting(runs: list[Any], value_of_expr: Callable[[Any, str], float | None], config_of) -> tuple[list[Any], str]:
    """Where an experiment searched a grid (``report.select: {over: [keys], by: metric expression, direction}``), the
    runs of the setting whose mean selection metric over seeds is best, and that setting in words; runs of
    experiments without a search pass through: a paper that tuned on a dev split reports the setting it picked."""
    import json
    from collections import defaultdict

    kept, chosen = [], []
    by_rule: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        by_rule[json.dumps((config_of(run).get("report") or {}).get("select"), sort_keys=True)].append(run)
    for key, group in sorted(by_rule.items()):
        select = json.loads(key)
        if not select:
            kept += group
            continue
        settings: dict[tuple, list[Any]] = defaultdict(list)
        for run in group:
            settings[tuple(str(config_value(config_of(run), k)) for k in select["over"])].append(run)
        scores = {}
        for setting, members in settings.items():
            values = [v for v in (value_of_expr(r, select["by"]) for r in members) if v is not None]
            if values:
                scores[setting] = stats.mean(values)
        if not scores:
            kept += group
            continue
        pick = (min if select.get("direction", "greater") == "less" else max)(sorted(scores), key=scores.__getitem__)
        kept += settings[pick]
        chosen.append((select, pick, len(settings)))
    return kept, chosen


def paired_values(claim: Claim, runs: Iterable[Any], value_of: Callable[[Any], float | None],
                  config_of: Callable[[Any], dict], tier: str | None = None,
                  experiment_of: Callable[[Any], str | None] | None = None,
                  value_of_expr: Callable[[Any, str], float | None] | None = None) -> list[float]:
    """Per pairing unit (``pair_by``) where every arm has a run: Σ wᵢ·valueᵢ (one arm: its value). With ``tier``, only
    runs of the claim's experiments at that tier count, and ``tier_where`` applies; an arm with several runs for one
    unit reads its experiment's selected setting (``report.select``), else the claim is ambiguous (an error)."""
    runs = [run for run in runs if tier is None or experiment_of is None
            or experiment_of(run) in claim.experiment_files(tier)]
    where = claim.where_at(tier) if tier else claim.where
    per_arm: list[list[Any]] = [[] for _ in claim.arms]
    for run in runs:
        cfg = config_of(run)
        if selects(cfg, where):
            for i, arm in enumerate(claim.arms):
                if selects(cfg, arm):
                    per_arm[i].append(run)
    by_arm: list[dict[tuple, float]] = []
    for i, arm_runs in enumerate(per_arm):
        if value_of_expr is not None:
            arm_runs, _ = select_setting(arm_runs, value_of_expr, config_of)
        values: dict[tuple, float] = {}
        for run in arm_runs:
            unit = tuple(str(config_value(config_of(run), k)) for k in claim.pair_by)
            value = value_of(run)
            if value is None:
                continue
            if unit in values:
                raise AmbiguousRuns(f"claim {claim.id}: arm {i} has several runs for {dict(zip(claim.pair_by, unit))} "
                                    "and no report.select in their config to pick one; valid: one run per pairing unit")
            values[unit] = value
        by_arm.append(values)
    units = sorted(set.intersection(*(set(values) for values in by_arm)))
    return [sum(w * values[unit] for w, values in zip(claim.arm_weights, by_arm)) for unit in units]


def one_sided_p(values: list[float], margin: float, direction: str) -> tuple[float, float]:
    """(p of the paper's side, p of the other side): one-sided t-tests against the margin; ``within`` takes the larger
    p of its two one-sided tests for the band (TOST) and, for the other side, the smaller of the two outside it."""
    from scipy import stats as scipy_stats

    n = len(values)
    if n < 2:
        return 1.0, 1.0
    mean, sd = stats.mean(values), stats.mean_sd(values)[1] or 0.0
    if sd == 0:   # no spread: each side is certain; the band is closed, as ``stats.verdict`` reads it
        above, below = (0.0 if mean > margin else 1.0), (0.0 if mean < margin else 1.0)
        low_band, high_band = (0.0 if mean >= -margin else 1.0), (0.0 if mean <= margin else 1.0)
    else:
        se = sd / math.sqrt(n)
        t = lambda x: (mean - x) / se  # noqa: E731
        above, below = float(scipy_stats.t.sf(t(margin), n - 1)), float(scipy_stats.t.cdf(t(margin), n - 1))
        low_band, high_band = float(scipy_stats.t.sf(t(-margin), n - 1)), float(scipy_stats.t.cdf(t(margin), n - 1))
    if direction == "greater":
        return above, below
    if direction == "less":
        return below, above
    outside = min(1.0 - low_band, 1.0 - high_band)   # entirely below −margin, or entirely above +margin
    return max(low_band, high_band), outside


def evaluate_claim(claim: Claim, values: list[float], tier: str = "small") -> Outcome:
    if not values:
        return Outcome(claim, 0, None, None, None, "inconclusive", tier=tier)
    mean, low, high = stats.t_interval(values)
    result = stats.verdict(low, high, claim.margin, claim.direction)
    needed = stats.pairs_to_resolve(values, claim.margin, claim.direction) if result == "inconclusive" else None
    p_held, p_contradicted = one_sided_p(values, claim.margin, claim.direction)
    return Outcome(claim, len(values), mean, low if math.isfinite(low) else None,
                   high if math.isfinite(high) else None, result, needed, values, p_held, p_contradicted, tier)


def holm(outcomes: list[Outcome], alpha: float = ALPHA) -> list[Outcome]:
    """Mark the verdicts that survive Holm's step-down correction over these outcomes (one family: a paper's own
    claims at one tier). Each outcome is one test, of the side its verdict is on (inconclusive: its smaller p)."""
    def p_of(o: Outcome) -> float:
        return o.p_held if o.verdict == "held" else o.p_contradicted if o.verdict == "contradicted" \
            else min(o.p_held, o.p_contradicted)

    ordered = sorted(outcomes, key=p_of)
    m = len(ordered)
    for k, outcome in enumerate(ordered):
        if p_of(outcome) > alpha / (m - k):
            break
        outcome.survives_holm = outcome.verdict in ("held", "contradicted")
    return outcomes


# ------------------------------------------------------------------------------------------ on a page
RULES = ("Each claim: the paired difference over seeds (same seed = same data and initialisation for every arm), a "
         "weighted sum of arms for a difference of differences, or, for one arm, the value itself; mean with its 95% "
         "t-interval. **held**: the interval lies on the paper's side of the margin; **contradicted**: on the other "
         "side; **inconclusive**: it spans it (with the pairs that would resolve the observed effect at its observed "
         "spread). *Holm* marks a verdict that also survives Holm's correction over the paper's claims at that scale "
         "(one-sided tests at 2.5%, the sides of the 95% interval). A *proxy* tests a stand-in quantity the paper "
         "never states, because its own cannot be measured at that scale: proxies are counted apart. The pairs "
         "column reads *found of registered* (the sample each claim was registered with).")


def tiers_of(spec: Any, runs: list) -> list[str]:
    """The claims' tier, then the paper scale where any paper-scale run of a claim's experiments exists."""
    tiers = [spec.claims_tier]
    experiments = {e for claim in spec.claims for e in claim.experiment_files("paper")}
    if spec.claims_tier != "paper" and any(r.scale == "paper" and r.experiment in experiments for r in runs):
        tiers.append("paper")
    return tiers


def claim_outcomes(spec: Any, runs: list) -> dict[str, list[Outcome]]:
    """Each claim of the spec at each tier with runs (paired over seeds, 95% interval), Holm marked over the paper's
    own claims of a tier."""
    out = {}
    for tier in tiers_of(spec, runs):
        tier_runs = [r for r in runs if r.status == "ok" and r.scale == tier]
        outcomes = []
        for claim in spec.claims:
            values = paired_values(claim, tier_runs, lambda run: metric_of(run.result, run.metrics_rows(), claim.metric),
                                   lambda run: run.cfg, tier=tier, experiment_of=lambda run: run.experiment,
                                   value_of_expr=lambda run, expr: metric_of(run.result, run.metrics_rows(), expr))
            outcomes.append(evaluate_claim(claim, values, tier))
        holm([o for o in outcomes if o.claim.role == "paper"])
        out[tier] = outcomes
    return out


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts of a tier's verdicts: the paper's claims (with Holm's survivors) and the proxies, apart."""
    paper = [o for o in outcomes if o.claim.role == "paper"]
    proxy = [o for o in outcomes if o.claim.role == "proxy"]
    count = lambda group, v: sum(o.verdict == v for o in group)  # noqa: E731
    return {"paper": {v: count(paper, v) for v in VERDICTS}, "proxy": {v: count(proxy, v) for v in VERDICTS},
            "holm": {v: sum(o.survives_holm and o.verdict == v for o in paper) for v in ("held", "contradicted")},
            "n_paper": len(paper), "n_proxy": len(proxy)}


def summary_line(counts: dict[str, Any]) -> str:
    p, x, h = counts["paper"], counts["proxy"], counts["holm"]
    line = (f"the paper's claims: {p['held']} held, {p['contradicted']} contradicted, {p['inconclusive']} inconclusive "
            f"(of {counts['n_paper']}; Holm: {h['held']} held and {h['contradicted']} contradicted survive)")
    if counts["n_proxy"]:
        line += (f"; proxies: {x['held']} held, {x['contradicted']} contradicted, {x['inconclusive']} inconclusive "
                 f"(of {counts['n_proxy']})")
    return line


def _registered(claim: Claim, registration: dict[str, list]) -> str:
    history = registration.get(claim.id) or []
    current = [e for e in history if e.definition is not None]
    if not current:
        return "not registered"
    entry = current[-1]
    when = f"{entry.registered} ({entry.commit[:7]})"
    return when + (f", after {entry.records_present} of its records" if entry.post_hoc else ", before its runs")


def _verdict_cell(o: Outcome) -> str:
    cell = f"**{o.verdict}**" + (" (Holm)" if o.survives_holm else "")
    if o.verdict == "inconclusive":
        cell += (f" (~{o.seeds_to_resolve} pairs would resolve it)" if o.seeds_to_resolve
                 else " (no runs)" if o.n == 0 else " (no effect to resolve)")
    return cell


def _row(o: Outcome, registration: dict[str, list]) -> str:
    c = o.claim
    side = {"greater": ">", "less": "<", "within": "within ±"}[c.direction]
    weights = c.arm_weights
    if len(c.arms) > 2:
        arms = " ".join(f"{'+' if w > 0 else '−'} {abs(w):g}·{label}" for w, label in zip(weights, c.arm_labels))
    else:
        arms = " − ".join(c.arm_labels) if c.arm_labels else "–"
    said = f"“{c.quote}” ({c.statement})" if c.quote else c.statement
    pairs = f"{o.n} of {c.seeds}" if c.seeds else str(o.n)
    note = f" ¹{c.id}" if c.setting_note else ""
    return (f"| {said} | {c.source} | {c.metric} ({c.unit}): {arms} {side} {c.margin:g} | "
            f"{_registered(c, registration)} | {o.effect} | {pairs} | {_verdict_cell(o)}{note} |")


def render_notes(spec: Any, runs: list) -> list[str]:
    """The spec's notes: sentences, or callables computing them from the paper's runs (a number a page states about
    the records is read off them, never typed in)."""
    return [note(runs) if callable(note) else note for note in spec.notes]


def render_claims(spec: Any, outcomes: dict[str, list[Outcome]], ran: set[str],
                  registration: dict[str, list], runs: list = ()) -> list[str]:
    lines = ["## Claims", "", RULES, ""]
    header = ["| claim (the paper's words) | source | test: metric, arms, margin | registered | effect [95% CI] | pairs | "
              "verdict |", "|---|---|---|---|---|---|---|"]
    for tier, tier_outcomes in outcomes.items():
        counts = summary(tier_outcomes)
        lines += [f"At scale={tier}: {summary_line(counts)}.", ""]
        for role, title in (("paper", "the paper's claims"), ("proxy", "proxies (counted apart)")):
            chosen = [o for o in tier_outcomes if o.claim.role == role]
            if chosen:
                lines += [f"### scale={tier}: {title}", "", *header, *(_row(o, registration) for o in chosen), ""]
        notes = [o.claim for o in tier_outcomes if o.claim.setting_note]
        if notes:
            lines += [f"¹ Settings that depart from the paper's to make a claim resolvable at scale={tier}:", ""]
            lines += [f"- ¹{c.id}: {c.setting_note}" + (f" The paper's own setting: claim {c.at_paper_setting}."
                                                       if c.at_paper_setting else "") for c in notes]
            lines.append("")
    lines += render_registration(spec, registration)
    missing = [e for e in spec.experiment_files(spec.claims_tier) if e not in ran]
    if missing:
        lines += [f"**Not run yet:** {', '.join(missing)} — part of `make reproduce-{spec.name}`, but no record of it "
                  "is committed; the claims it tests read \"no runs\".", ""]
    stand_ins = sorted({o.claim.stand_in for group in outcomes.values() for o in group if o.claim.stand_in})
    if stand_ins:
        lines += ["Stand-ins (what the small tier runs instead of the paper's setting): " + "; ".join(stand_ins) + ".", ""]
    lines += render_coverage(spec)
    notes = [n for n in render_notes(spec, list(runs)) if n]
    if notes:
        lines += ["What the small tier does not cover, and why:", ""] + [f"- {n}" for n in notes] + [""]
    return lines


def render_registration(spec: Any, registration: dict[str, list]) -> list[str]:
    """The claims registered after their records, every re-registration (dated, with its reason), every withdrawal."""
    lines = []
    post_hoc = [cid for cid, history in registration.items() if history[0].post_hoc]
    again = [(cid, e) for cid, history in registration.items() for e in history[1:]]
    if not registration:
        return [f"**Registration:** none (`python -m bench.papers register {spec.name}` freezes the claims).", ""]
    lines.append(f"**Registration** (bench/papers/registrations/{spec.name}.json): {len(registration)} claims; "
                 + (f"{len(post_hoc)} were first registered after records of their experiments existed (the records "
                    f"behind them predate the registration): {', '.join(sorted(post_hoc))}."
                    if post_hoc else "each was registered before its runs."))
    for cid, entry in sorted(again, key=lambda item: (item[1].registered, item[0])):
        what = "withdrawn" if entry.definition is None else "re-registered"
        lines.append(f"- {entry.registered}: {cid} {what} ({entry.commit[:7]}): {entry.reason}")
    return lines + [""]


def render_coverage(spec: Any) -> list[str]:
    lines = []
    if spec.coverage:
        lines += ["### Coverage of the paper's headline claims", "",
                  "| the paper says | source | here | claims / why |", "|---|---|---|---|"]
        for item in spec.coverage:
            lines.append(f"| “{item.quote}” | {item.source} | {item.status} | "
                         f"{', '.join(item.claims) + ('; ' if item.claims and item.reason else '') if item.claims else ''}"
                         f"{item.reason} |")
        lines.append("")
    if spec.artefacts:
        lines += ["### Tables and figures", "", "| the paper's | reproduced | experiments | why |", "|---|---|---|---|"]
        for a in spec.artefacts:
            lines.append(f"| {a.name} | {a.status} | {', '.join(a.experiments) or '–'} | {a.reason or '–'} |")
        lines.append("")
    return lines
