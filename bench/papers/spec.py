"""What a spec is: ``PaperSpec`` (a paper: its experiments, tables, figures, claims, notes) and ``ComparisonSpec``
(a head-to-head of arms over task families at matched budgets). Both say which sweeps reproduce them (``plan``)
and which command writes their page; bench/report renders them without knowing any of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..errors import UserError
from ..paths import EXPERIMENTS_DIR, PUBLISHED_DIR, RESULTS_DIR
from ..report.claims import Claim
from ..report.tables import TableRules

TIERS = ("tiny", "small", "paper")
Figure = Callable[[list, Path], bool]   # (the paper's finished runs, the PNG to write) -> drawn; False: no run draws it
Plan = list[tuple[str, tuple[str, ...]]]   # (experiment, overrides fixed beside the experiment's own sweep)


def _jobs(plan: Plan, tier: str) -> dict[str, list[list[str]]]:
    """Per experiment, the jobs its sweeps launch (bench/sweep/sweeps.py: Hydra's own expansion)."""
    from ..sweep.sweeps import sweep_jobs

    jobs: dict[str, list[list[str]]] = {}
    for exp, fixed in plan:
        jobs.setdefault(exp, []).extend(sweep_jobs(exp, [f"scale={tier}", *fixed]))
    return jobs


COVERAGE_STATUSES = ("tested", "paper-scale only", "not testable here")
ARTEFACT_STATUSES = ("small + paper", "paper only", "not reproducible here")


@dataclass(frozen=True)
class Coverage:
    """One headline claim of the paper, in its words, and how the suite tests it."""
    quote: str
    source: str
    status: str                          # one of COVERAGE_STATUSES
    claims: tuple[str, ...] = ()         # the claim ids that test it (status "tested", or paper-scale ones)
    reason: str = ""                     # why it is tested only at paper scale, or not here at all


@dataclass(frozen=True)
class Artefact:
    """A table or figure of the paper, and the tiers that reproduce it."""
    name: str                            # "Table 1", "Fig. 2"
    status: str                          # one of ARTEFACT_STATUSES
    experiments: tuple[str, ...] = ()    # base experiment names that feed it
    reason: str = ""                     # what the small tier cannot do, or why nothing can


@dataclass(frozen=True)
class PerfTable:
    """A paper's table of training cost (step time, memory) by model and batch, measured by bench.perf's loop
    (python -m bench.perf.paper_tables <paper>): rows as (label, method, training progress at which it is timed)."""
    stem: str                                   # results/<paper>/<stem>.md and .json
    title: str
    rows: tuple[tuple[str, str, float], ...]    # the first row is the reference of every ratio
    models: tuple[str, ...]
    batches: tuple[int, ...]
    rank: int = 8
    seq_len: int = 128
    about: str = ""                             # what the rows are timed at, after the generic header
    published: str = "n/a"                      # the paper's own numbers' column, and a note on them
    published_note: str = ""


@dataclass(frozen=True)
class PaperSpec:
    name: str
    title: str
    order: int                                # place in every list of papers and on results/README.md
    task_labels: dict[str, str]               # task registry name -> the paper's name for it
    experiments: dict[str, tuple[str, ...]]   # tier -> base experiment names run at that tier
    claims: tuple[Claim, ...]
    tables: TableRules = TableRules()
    figures: dict[str, Figure] = field(default_factory=dict)   # figure file stem -> what draws it
    claims_tier: str = "small"                # the tier whose runs the claims are tested on
    # Stand-ins and what could not fit, said on the page: sentences, or callables (the paper's runs -> a sentence)
    # for anything stated about the records, so the numbers come from them.
    notes: tuple[str | Callable[[list], str], ...] = field(default_factory=tuple)
    perf_tables: tuple[PerfTable, ...] = ()   # its cost tables, measured rather than trained (bench.perf.paper_tables)
    coverage: tuple[Coverage, ...] = ()       # every headline claim of the paper: tested, paper-scale only, or not here
    artefacts: tuple[Artefact, ...] = ()      # every table and figure: small + paper, paper only, or not here
    published_dir: Path = PUBLISHED_DIR       # where <name>_table*.csv are
    experiment_dir: Path = EXPERIMENTS_DIR    # where the experiments' YAML files are
    kind: ClassVar[str] = "paper"

    def experiment_files(self, tier: str) -> list[str]:
        if tier not in self.experiments:
            raise UserError(f"SCALE={tier} for paper {self.name}; valid: {sorted(self.experiments)}")
        suffix = "" if tier == "paper" else f"_{tier}"
        return [f"{name}{suffix}" for name in self.experiments[tier]]

    def plan(self, tier: str) -> Plan:
        """The sweeps `make reproduce-<paper> SCALE=<tier>` launches: each experiment's own."""
        return [(exp, ()) for exp in self.experiment_files(tier)]

    def sweeps(self, tier: str) -> dict[str, list[list[str]]]:
        """The jobs `make reproduce-<paper> SCALE=<tier>` launches, per experiment."""
        return _jobs(self.plan(tier), tier)

    def sweep_title(self, experiment: str, fixed: tuple[str, ...], tier: str) -> str:
        return f"{self.name} / {experiment} ({tier})"

    def report_argv(self) -> list[str]:
        return ["-m", "bench.report", "--paper", self.name]

    def registration(self) -> dict[str, list]:
        """Each claim's registration history (bench/papers/registry.py), for its page."""
        from . import registry

        return registry.load(self.name)

    def validate(self) -> None:
        """One line naming the first thing the spec names that does not exist."""
        ids = {claim.id for claim in self.claims}
        for item in self.coverage:
            if item.status not in COVERAGE_STATUSES or not set(item.claims) <= ids:
                raise UserError(f"paper spec {self.name}: coverage of {item.source!r}: status {item.status!r}, claims "
                                f"{list(item.claims)}; valid: a status in {list(COVERAGE_STATUSES)} and claim ids of "
                                "the spec")
        for artefact in self.artefacts:
            if artefact.status not in ARTEFACT_STATUSES:
                raise UserError(f"paper spec {self.name}: {artefact.name}: status {artefact.status!r}; valid: "
                                f"{list(ARTEFACT_STATUSES)}")
        for tier in self.experiments:
            if tier not in TIERS:
                raise UserError(f"paper spec {self.name}: tier {tier!r}; valid: {list(TIERS)}")
            for exp in self.experiment_files(tier):
                if not (self.experiment_dir / f"{exp}.yaml").exists():
                    raise UserError(f"paper spec {self.name}: experiment {exp!r} ({tier} tier) has no file "
                                    f"{self.experiment_dir / (exp + '.yaml')}")
        for stem, draw in self.figures.items():
            if not callable(draw):
                raise UserError(f"paper spec {self.name}: figure {stem!r} is {draw!r}; valid: a callable (runs, path)")
        tier_experiments = set(self.experiments.get(self.claims_tier, ()))
        for claim in self.claims:
            missing = [e for e in claim.all_experiments if e not in tier_experiments]
            if missing:
                raise UserError(f"paper spec {self.name}: claim {claim.id!r} names experiment {missing[0]!r}, "
                                f"which the {self.claims_tier} tier does not run; valid: {sorted(tier_experiments)}")
            if claim.at_paper_setting and claim.at_paper_setting not in ids:
                raise UserError(f"paper spec {self.name}: claim {claim.id!r}: at_paper_setting="
                                f"{claim.at_paper_setting!r}; valid: a claim id of the spec")


@dataclass(frozen=True)
class Family:
    key: str          # the report table the experiment tags (report.tables)
    label: str
    experiment: str   # base name: conf/experiment/<experiment>.yaml (paper scale), <experiment>_<tier>.yaml
    metric: str       # a metric expression (bench.report.claims.metric_of)
    direction: str    # "greater" or "less" is better
    unit: str
    small: str        # what the CPU tier runs, in words (its steps are read off the records)
    paper: str        # what the paper-scale experiment runs, in words
    paper_reference_resources: str = "default"   # conf/resources for the reference arm (FFT) at paper scale


@dataclass(frozen=True)
class Tuning:
    """A comparison's tuning stage: every arm of every family (and budget) picks its learning rate, and a searched
    arm its own hyperparameter too, from the grid of conf/experiment/<family experiment>_<tier><suffix>.yaml, run by
    tuning seeds on a validation split (task.score_on=validation); the final seeds then run at the chosen setting
    (<family experiment>_<tier><final_suffix>.yaml) and are scored on the test split, as the one-rate grid's are.
    bench/report/tuning.py reads the choices off the records."""
    stage: str                                         # the stage `make compare` runs: a key of ``seeds``
    seeds: dict[str, tuple[int, ...]]                  # stage -> its tuning seeds (never a final seed)
    searched: dict[str, tuple[str, tuple[float, ...]]]  # arm -> (config key, values) searched beside the rate
    grid_text: str                                     # the grid, and why it is that grid
    criterion_text: str                                # what the choice maximises or minimises, ties included
    stage_text: dict[str, str]                         # stage -> what it is, in words
    extend_edges: bool = False                         # a choice at the grid's edge: one more point a step beyond
    budget_minutes: float = 180.0                      # the wall-clock a stage may take on ``jobs_at_once`` cores
    jobs_at_once: int = 2
    tiers: tuple[str, ...] = ("small",)                # the tiers with a tuning stage
    rate_key: str = "trainer.learning_rate"
    suffix: str = "_tune"
    final_suffix: str = "_final"
    table_suffix: str = "_tuning"                      # a tuning run's report.tables: <family key><table_suffix>

    def keys_of(self, arm: str) -> tuple[str, ...]:
        """The config keys an arm's setting is made of: the learning rate, and a searched arm's own key."""
        return (self.rate_key,) + ((self.searched[arm][0],) if arm in self.searched else ())


@dataclass(frozen=True)
class ComparisonSpec:
    """Every arm on one experiment per task family, at matched budgets, over seeds; ranked per family and budget.
    The prose fields are the page's own sentences about this grid (bench/report/leaderboard.py lays them out)."""
    name: str                                  # the report tag (report.paper) of its runs and its records folder
    title: str
    order: int
    families: tuple[Family, ...]
    arms: dict[str, str]                       # arm (conf/arm/<arm>.yaml) -> label, in the page's order
    reference: str                             # trains every weight: shown beside each board, never ranked
    reference_run: tuple[str, ...]             # its overrides: run once per seed, its budget a placeholder
    not_run: dict[tuple[str, str], str]        # (arm, family key or "*") -> why it has no runs there
    perf_rows: dict[str, str]                  # arm -> bench.perf's row (results/perf.json) for the Pareto plots
    headline: str                              # the average-rank section's heading
    budget_text: str                           # what a budget is, after how the average rank is computed
    protocol_text: str                         # what every arm of a family shares
    budget_notes: tuple[str, ...]
    notes: tuple[Callable[[Any, list], list[str]], ...]  # (spec, runs) -> more note lines, read off the records
    paper_scale_text: str                      # the section on running the grid at paper scale
    index_line: str                            # its sentence on results/README.md
    cli: str = "bench.compare"                 # the module whose command writes the page (python -m <cli>)
    make_target: str = "compare"               # `make <target>` trains what is missing, then writes it
    bootstrap: int = 2000                      # draws of the average rank's interval
    tiers: tuple[str, ...] = ("small", "paper")
    experiment_dir: Path = EXPERIMENTS_DIR
    tuning: Tuning | None = None               # the tuning stage and its final runs (None: one shared rate only)
    records_dir: Path | None = None            # its committed records (default results/<name>/records): the final
                                               # stage's sweeps follow the tuning records there
    kind: ClassVar[str] = "comparison"

    def not_run_reason(self, arm: str, family: str) -> str | None:
        return self.not_run.get((arm, family)) or self.not_run.get((arm, "*"))

    def experiment_files(self, tier: str) -> list[str]:
        names = [f.experiment if tier == "paper" else f"{f.experiment}_{tier}" for f in self.families]
        for exp in names:
            if not (self.experiment_dir / f"{exp}.yaml").exists():
                raise UserError(f"SCALE={tier}: no comparison experiment {self.experiment_dir / (exp + '.yaml')}; "
                                f"valid: {', '.join(self.tiers)}")
        return names

    def grid_plan(self, tier: str) -> Plan:
        """Per family: the one-rate grid, then the reference arm, which at paper scale takes its family's resources
        (fp32 master weights, sharding: python -m bench.plan)."""
        return [(exp, fixed) for family, exp in zip(self.families, self.experiment_files(tier))
                for fixed in ((), self.reference_run + self._reference_resources(family, tier))]

    def tuning_plan(self, tier: str, stage: str | None = None) -> Plan:
        """Per family: the tuning grid (its experiment's arms), each searched arm at each of its searched values, and
        the reference arm, all at the stage's tuning seeds. Empty where the tier has no tuning stage."""
        if self.tuning is None or tier not in self.tuning.tiers:
            return []
        seeds = ("seed=" + ",".join(map(str, self.tuning.seeds[stage or self.tuning.stage])),)
        plan: Plan = []
        for exp in self.experiment_files(tier):
            tune = exp + self.tuning.suffix
            plan.append((tune, seeds))
            for arm, (key, values) in self.tuning.searched.items():
                plan.append((tune, (f"arm={arm}", f"{key}={','.join(repr(v) for v in values)}", *seeds)))
            plan.append((tune, self.reference_run + seeds))
        return plan

    def plan(self, tier: str) -> Plan:
        """What `make compare SCALE=<tier>` launches before it can know the final stage (make smoke and the records
        check read it too): the one-rate grid and the tuning stage."""
        return self.grid_plan(tier) + self.tuning_plan(tier)

    def final_plan(self, tier: str, runs: list) -> Plan:
        """The final stage the tuning records ask for: each arm whose chosen setting is not the family's own, at the
        final seeds of its family's experiment (bench/report/tuning.py)."""
        if self.tuning is None or tier not in self.tuning.tiers:
            return []
        from ..report.tuning import final_plan

        return final_plan(self, tier, runs)

    def extension_plan(self, tier: str, runs: list) -> Plan:
        """The tuning points beyond the grid's edges the tuning records ask for (bench/report/tuning.py)."""
        if self.tuning is None or tier not in self.tuning.tiers:
            return []
        from ..report.tuning import extension_plan

        return extension_plan(self, tier, runs)

    def committed_runs(self) -> list:
        from ..report.records import load_records

        records = self.records_dir or (RESULTS_DIR / self.name / "records")
        return load_records(records.parent.parent, records.parent.name)[0]

    @staticmethod
    def _reference_resources(family: Family, tier: str) -> tuple[str, ...]:
        resources = family.paper_reference_resources
        return (f"resources={resources}",) if tier == "paper" and resources != "default" else ()

    def sweeps(self, tier: str) -> dict[str, list[list[str]]]:
        """The jobs `make compare SCALE=<tier>` launches, per experiment: each family's grid and its reference arm,
        the tuning stage, and the extension and final stages its committed tuning records ask for."""
        committed = self.committed_runs()
        return _jobs(self.plan(tier) + self.extension_plan(tier, committed) + self.final_plan(tier, committed), tier)

    def sweep_title(self, experiment: str, fixed: tuple[str, ...], tier: str) -> str:
        return f"{self.name} / {experiment} {' '.join(fixed) or '(grid)'} ({tier})"

    def report_argv(self) -> list[str]:
        return ["-m", self.cli]

    def validate(self) -> None:
        for tier in self.tiers:
            self.experiment_files(tier)
        if self.tuning is None:
            return
        if self.tuning.stage not in self.tuning.seeds:
            raise UserError(f"comparison {self.name}: tuning stage {self.tuning.stage!r}; valid: "
                            f"{sorted(self.tuning.seeds)}")
        for tier in self.tuning.tiers:
            for exp in self.experiment_files(tier):
                for name in (exp + self.tuning.suffix, exp + self.tuning.final_suffix):
                    if not (self.experiment_dir / f"{name}.yaml").exists():
                        path = self.experiment_dir / f"{name}.yaml"
                        raise UserError(f"comparison {self.name}: no experiment {path} for the tuning stage at the "
                                        f"{tier} tier")
