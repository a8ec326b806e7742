"""One file per paper: what `make reproduce-<paper>` runs, what the report draws, and what the paper claims.

    python -m bench.papers experiments mora small   # the experiments of a tier, one per line (the Makefile reads it)
    python -m bench.papers check                    # every spec names existing experiments, figures and tiers

A spec is data. Experiments are conf/experiment/<name>.yaml (the published setting, scale=paper) and
conf/experiment/<name>_<tier>.yaml (the CPU tiers: ``tiny`` is the one-minute smoke, ``small`` the tier sized to
resolve the claims). Tables come from bench/published/<paper>_table*.csv; a run feeds the tables its experiment
file lists under ``report.tables``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..claims import Claim
from ..errors import UserError

from ..paths import EXPERIMENTS_DIR as CONF_EXPERIMENTS
TIERS = ("tiny", "small", "paper")


@dataclass(frozen=True)
class PaperSpec:
    name: str
    title: str
    task_labels: dict[str, str]
    experiments: dict[str, tuple[str, ...]]   # tier -> base experiment names run at that tier
    figures: dict[str, str]                   # figure file stem -> function name in bench.report_figures
    claims: tuple[Claim, ...]
    claims_tier: str = "small"                # the tier whose runs the claims are tested on
    notes: tuple[str, ...] = field(default_factory=tuple)  # stand-ins and what could not fit, said on the page

    def experiment_files(self, tier: str) -> list[str]:
        if tier not in self.experiments:
            raise UserError(f"SCALE={tier} for paper {self.name}; valid: {sorted(self.experiments)}")
        suffix = "" if tier == "paper" else f"_{tier}"
        return [f"{name}{suffix}" for name in self.experiments[tier]]

    def sweeps(self, tier: str) -> dict[str, list[list[str]]]:
        """The jobs `make reproduce-<paper> SCALE=<tier>` launches, per experiment (bench/sweep/sweeps.py)."""
        from ..sweep.sweeps import sweep_jobs

        return {exp: sweep_jobs(exp, [f"scale={tier}"]) for exp in self.experiment_files(tier)}


def load(name: str) -> PaperSpec:
    from . import cola, mora, olora, salora

    specs = {"olora": olora.SPEC, "cola": cola.SPEC, "salora": salora.SPEC, "mora": mora.SPEC}
    if name not in specs:
        raise UserError(f"paper={name!r}; valid: {', '.join(PAPERS)}")
    return specs[name]


PAPERS = ("olora", "cola", "salora", "mora")


def validate(spec: PaperSpec, conf_dir: Path = CONF_EXPERIMENTS) -> None:
    """One line naming the first thing a spec names that does not exist."""
    from .. import report_figures

    for tier in spec.experiments:
        if tier not in TIERS:
            raise UserError(f"paper spec {spec.name}: tier {tier!r}; valid: {list(TIERS)}")
        for exp in spec.experiment_files(tier):
            if not (conf_dir / f"{exp}.yaml").exists():
                raise UserError(f"paper spec {spec.name}: experiment {exp!r} ({tier} tier) has no file "
                                f"{conf_dir / (exp + '.yaml')}")
    for stem, func in spec.figures.items():
        if not callable(getattr(report_figures, func, None)):
            raise UserError(f"paper spec {spec.name}: figure {stem!r} names {func!r}, which bench.report_figures lacks")
    tier_experiments = set(spec.experiments.get(spec.claims_tier, ()))
    for claim in spec.claims:
        if claim.experiment not in tier_experiments:
            raise UserError(f"paper spec {spec.name}: claim {claim.id!r} names experiment {claim.experiment!r}, which "
                            f"the {spec.claims_tier} tier does not run; valid: {sorted(tier_experiments)}")
