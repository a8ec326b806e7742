"""A comparison's tuning stage, read off its records (bench/papers/spec.py ``Tuning``).

Per family, budget and arm: the setting (learning rate, and a searched arm's own hyperparameter) whose validation
criterion, the family's metric averaged over the stage's tuning seeds, is best (``select``); where that choice sits at
the stated grid's lowest or highest rate, one more point a ladder step beyond it (``extension_plan``), and the
choice made again over the grid so extended (``choices_of``); the final stage that
choice asks for (``final_plan``: only the arms whose choice is not the family's own setting, since there the final
run is the one-rate grid's run); the runs each board reads (``board_runs``: the one-rate board's at the family's
own setting, the tuned board's at the chosen one, never a tuning run and never a tuning seed); how ranks moved
between the two boards (``rank_moves``); and what each stage costs, done and still to run (``stage_costs``).

A cell is chosen only once every grid point has a record for every tuning seed of the stage: a cell still tuning
is "pending" (nothing is chosen from part of its grid), and a grid point with a failed tuning run (divergence) is
never chosen; a cell whose every point failed is "failed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from .. import stats
from ..errors import UserError
from .claims import config_value, metric_of

Setting = tuple[tuple[str, float], ...]   # ((config key, value), ...): the learning rate first
Cell = tuple[str, "int | None"]           # (arm, budget); the reference arm's budget is None


# ------------------------------------------------------------------------------------------ settings of runs
def setting_of(cfg: dict, keys: tuple[str, ...]) -> Setting | None:
    values = []
    for key in keys:
        value = config_value(cfg, key)
        if value is None:
            return None
        values.append((key, float(value)))
    return tuple(values)


def same(a: Setting | None, b: Setting | None) -> bool:
    return (a is not None and b is not None and [k for k, _ in a] == [k for k, _ in b]
            and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0) for (_, x), (_, y) in zip(a, b)))


def key_of(setting: Setting) -> Setting:
    """A setting as a dictionary key: each value at 12 significant digits (3e-3 × 3 is 0.009000000000000001)."""
    return tuple((k, float(f"{v:.12g}")) for k, v in setting)


def fmt_value(value: float) -> str:
    return f"{value:.3g}"


def fmt_setting(spec: Any, setting: Setting | None) -> str:
    """``3e-03`` for a learning rate alone; ``0.003, λ 2`` for LoRA+ (its searched key's last part)."""
    if setting is None:
        return "–"
    parts = [fmt_value(v) if k == spec.tuning.rate_key else f"{k.rsplit('.', 1)[-1]} {fmt_value(v)}"
             for k, v in setting]
    return ", ".join(parts)


def arm_of(cfg: dict) -> str | None:
    return cfg.get("arm")


def cell_of(spec: Any, cfg: dict) -> Cell:
    arm = arm_of(cfg)
    return arm, (None if arm == spec.reference else (cfg.get("compare") or {}).get("budget"))


def is_tuning_run(spec: Any, run: Any) -> bool:
    """Scored on a validation split (task.score_on), or tagged for a tuning table: never on a board."""
    if config_value(run.cfg, "task.score_on") == "validation":
        return True
    return spec.tuning is not None and any(str(t).endswith(spec.tuning.table_suffix) for t in run.tags[1])


def tuning_seeds(spec: Any) -> set[int]:
    return {seed for seeds in spec.tuning.seeds.values() for seed in seeds} if spec.tuning else set()


def experiment_of(family: Any, tier: str) -> str:
    return family.experiment if tier == "paper" else f"{family.experiment}_{tier}"


@lru_cache(maxsize=None)
def _composed_setting(experiment: str, tier: str, arm: str | None, keys: tuple[str, ...]) -> Setting:
    from omegaconf import OmegaConf

    from ..sweep.sweeps import _compose

    cfg = _compose([f"experiment={experiment}", f"scale={tier}", *([f"arm={arm}"] if arm else [])])
    return tuple((key, float(OmegaConf.select(cfg, key))) for key in keys)


def shared_setting(spec: Any, family: Any, tier: str, arm: str) -> Setting:
    """The family's own setting for the arm: its experiment's learning rate (conf/arm files never set one), and a
    searched arm's own value as its method config sets it; the one-rate board's runs are at this setting."""
    searched = arm if arm in spec.tuning.searched else None
    return _composed_setting(experiment_of(family, tier), tier, searched, spec.tuning.keys_of(arm))


# ------------------------------------------------------------------------------------------ the grid and the choice
@dataclass
class Point:
    setting: Setting
    values: dict[int, float]          # tuning seed -> the validation criterion
    failed: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        return stats.mean(list(self.values.values())) if self.values else None


@dataclass
class Choice:
    arm: str
    budget: int | None
    shared: Setting
    points: list[Point]
    seeds: tuple[int, ...]
    status: str                       # chosen | pending | failed
    setting: Setting | None = None
    edge: bool = False                # the chosen rate is the grid's lowest or highest: the best may lie beyond
    extension: Setting | None = None  # the point one ladder step beyond the edge the stated grid's choice sat on

    @property
    def moved(self) -> bool:
        return self.status == "chosen" and not same(self.setting, self.shared)

    @property
    def chose_extension(self) -> bool:
        return self.status == "chosen" and same(self.setting, self.extension)

    @property
    def criterion(self) -> float | None:
        return next((p.mean for p in self.points if same(p.setting, self.setting)), None)


Grid = dict[Cell, list[Setting]]


def select(spec: Any, family: Any, runs: list, grid: Grid, seeds: tuple[int, ...],
           shared: Callable[[str], Setting]) -> dict[Cell, Choice]:
    """Each cell's choice from the family's tuning runs at ``seeds``: the grid point with the best mean validation
    criterion (the family's metric, in its direction); exact ties go to the family's own setting, then to the
    grid's order (lowest rate first). A point with a failed or non-finite tuning run is never chosen."""
    tuning = spec.tuning
    table = family.key + tuning.table_suffix
    found: dict[Cell, list[tuple[Setting | None, int, Any]]] = {}
    for run in runs:
        if not run.feeds(table):
            continue
        if not is_tuning_run(spec, run) or config_value(run.cfg, "task.score_on") != "validation":
            raise UserError(f"{run.path}: tagged {table!r} but not scored on a validation split (task.score_on); "
                            "a tuning run never reads the test split")
        cfg = run.cfg
        seed = int(cfg.get("seed", 0))
        if seed in seeds:
            arm, budget = cell_of(spec, cfg)
            found.setdefault((arm, budget), []).append((setting_of(cfg, tuning.keys_of(arm)), seed, run))
    higher = family.direction == "greater"
    choices = {}
    for (arm, budget), settings in grid.items():
        own = shared(arm)
        points = []
        for setting in settings:
            point = Point(setting, {})
            for got, seed, run in found.get((arm, budget), []):
                if not same(got, setting):
                    continue
                value = (metric_of(run.result, run.metrics_rows(), family.metric) if run.status == "ok" else None)
                if run.status == "ok" and value is not None and math.isfinite(value):
                    point.values[seed] = float(value)
                elif run.status in ("ok", "failed"):
                    point.failed.append(seed)
            point.failed.sort()
            points.append(point)
        choice = Choice(arm, budget, own, points, tuple(seeds), "pending")
        if all(set(p.values) | set(p.failed) >= set(seeds) for p in points):
            usable = [p for p in points if not p.failed]
            if not usable:
                choice.status = "failed"
            else:
                best = min(usable, key=lambda p: ((-p.mean if higher else p.mean), not same(p.setting, own),
                                                  points.index(p)))
                rates = sorted({dict(s)[tuning.rate_key] for s in settings})
                choice.status, choice.setting = "chosen", best.setting
                choice.edge = len(rates) > 1 and dict(best.setting)[tuning.rate_key] in (rates[0], rates[-1])
        choices[(arm, budget)] = choice
    return choices


_GRIDS: dict[tuple, dict[str, Grid]] = {}
_PARAMS: dict[tuple, dict] = {}


def expand(plan: list, tier: str) -> dict[str, list[list[str]]]:
    """Per experiment, the jobs of a plan's sweeps (Hydra's own expansion), each experiment's sweeper params
    composed once a process: they are the experiment's and the tier's (no conf/arm, method or scale file sets
    hydra.sweeper; tests/test_compare.py holds that)."""
    from ..sweep.sweeps import sweep_jobs, sweep_params

    jobs: dict[str, list[list[str]]] = {}
    for exp, fixed in plan:
        if (exp, tier) not in _PARAMS:
            _PARAMS[(exp, tier)] = sweep_params(exp, [f"scale={tier}"])
        jobs.setdefault(exp, []).extend(sweep_jobs(exp, [f"scale={tier}", *fixed], _PARAMS[(exp, tier)]))
    return jobs


def grid_of(spec: Any, tier: str, stage: str | None = None) -> dict[str, Grid]:
    """family key -> cell -> its grid points, from the tuning stage's own sweeps (Hydra's expansion of the plan)."""
    stage = stage or spec.tuning.stage
    cache = (spec.name, str(spec.experiment_dir), tier, stage)
    if cache not in _GRIDS:
        jobs = expand(spec.tuning_plan(tier, stage), tier)
        grids: dict[str, Grid] = {}
        for family in spec.families:
            grid: Grid = {}
            for job in jobs.get(experiment_of(family, tier) + spec.tuning.suffix, []):
                overrides = dict(item.split("=", 1) for item in job)
                arm = overrides["arm"]
                budget = None if arm == spec.reference else int(overrides["compare.budget"])
                own = dict(shared_setting(spec, family, tier, arm))
                setting = tuple((k, float(overrides.get(k, own[k]))) for k in spec.tuning.keys_of(arm))
                points = grid.setdefault((arm, budget), [])
                if not any(same(setting, p) for p in points):
                    points.append(setting)
            grids[family.key] = {cell: sorted(points, key=lambda s: [v for _, v in s]) for cell, points in grid.items()}
        _GRIDS[cache] = grids
    return _GRIDS[cache]


def ladder_step(rate: float, up: bool) -> float:
    """The next rate on the 1-3-10 half-decade ladder every grid is drawn on: 1e-2 → 3e-2 up, 3e-3 → 1e-3 down."""
    exponent = math.floor(math.log10(rate) + 1e-9)
    mantissa = rate / 10 ** exponent
    if math.isclose(mantissa, 1.0, rel_tol=1e-6):
        step = 3 * 10.0 ** exponent if up else 3 * 10.0 ** (exponent - 1)
    elif math.isclose(mantissa, 3.0, rel_tol=1e-6):
        step = 10.0 ** (exponent + 1) if up else 10.0 ** exponent
    else:
        raise UserError(f"trainer.learning_rate={rate!r} is not on the 1-3-10 ladder a tuning grid is drawn on; "
                        "valid: 1eN or 3eN")
    return float(f"{step:.12g}")


def extension_points(spec: Any, chosen: dict[Cell, Choice]) -> dict[Cell, Setting]:
    """Each cell whose choice on the stated grid sits at its lowest or highest rate: the one point a ladder step
    beyond that edge (a searched key at its chosen value). One round only, so the stage's cost stays bounded."""
    if not spec.tuning.extend_edges:
        return {}
    key = spec.tuning.rate_key
    out = {}
    for cell, choice in chosen.items():
        if choice.status == "chosen" and choice.edge:
            rates = sorted({dict(p.setting)[key] for p in choice.points})
            rate = dict(choice.setting)[key]
            beyond = ladder_step(rate, up=rate == rates[-1])
            out[cell] = tuple((k, beyond if k == key else v) for k, v in choice.setting)
    return out


def _family_choices(spec: Any, family: Any, tier: str, runs: list, stage: str) -> dict[Cell, Choice]:
    """The choices once every cell whose choice on the stated grid sits at an edge has its point beyond (the
    choice's ``extension``): such a cell is pending until that point has a record."""
    grid = grid_of(spec, tier, stage)[family.key]
    seeds = spec.tuning.seeds[stage]
    own = lambda arm: shared_setting(spec, family, tier, arm)   # noqa: E731
    mine = [r for r in runs if r.scale == tier]
    stated = select(spec, family, mine, grid, seeds, own)
    beyond = extension_points(spec, stated)
    if not beyond:
        return stated
    extended = {cell: sorted(points + ([beyond[cell]] if cell in beyond else []), key=lambda s: [v for _, v in s])
                for cell, points in grid.items()}
    chosen = select(spec, family, mine, extended, seeds, own)
    for cell, setting in beyond.items():
        chosen[cell].extension = setting
    return chosen


def choices_of(spec: Any, tier: str, runs: list, stage: str | None = None) -> dict[str, dict[Cell, Choice]]:
    """family key -> cell -> its choice, at the stage's tuning seeds, over the stated grid and its points beyond."""
    stage = stage or spec.tuning.stage
    return {family.key: _family_choices(spec, family, tier, runs, stage) for family in spec.families}


def _grouped_plan(spec: Any, experiment: str, settings: dict[Cell, Setting], extra: tuple[str, ...]) -> list:
    """One sweep per (budget, setting): the arms that share it, the reference arm with its own overrides."""
    groups: dict[tuple, list[str]] = {}
    for (arm, budget), setting in settings.items():
        groups.setdefault((budget is None, budget or 0, key_of(setting)), []).append(arm)
    plan = []
    for (is_reference, budget, setting), arms in sorted(groups.items()):
        values = tuple(f"{k}={v!r}" for k, v in setting)
        fixed = (spec.reference_run + values if is_reference
                 else (f"arm={','.join(arms)}", f"compare.budget={budget}", *values))
        plan.append((experiment, fixed + extra))
    return plan


def extension_plan(spec: Any, tier: str, runs: list, stage: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """The extension step's sweeps: per family, each edge cell's point beyond, at the stage's tuning seeds, in the
    family's tuning experiment (scored on its validation split like every grid point)."""
    stage = stage or spec.tuning.stage
    seeds = ("seed=" + ",".join(map(str, spec.tuning.seeds[stage])),)
    chosen = choices_of(spec, tier, runs, stage)
    plan = []
    for family in spec.families:
        beyond = {cell: c.extension for cell, c in chosen[family.key].items() if c.extension is not None}
        plan += _grouped_plan(spec, experiment_of(family, tier) + spec.tuning.suffix, beyond, seeds)
    return plan


def final_plan(spec: Any, tier: str, runs: list) -> list[tuple[str, tuple[str, ...]]]:
    """The final stage's sweeps: per family, budget and chosen setting the arms that moved, at their family
    experiment's final seeds (the reference arm with its own overrides)."""
    chosen = choices_of(spec, tier, runs)
    plan = []
    for family in spec.families:
        moved = {cell: choice.setting for cell, choice in chosen[family.key].items() if choice.moved}
        plan += _grouped_plan(spec, experiment_of(family, tier) + spec.tuning.final_suffix, moved, ())
    return plan


# ------------------------------------------------------------------------------------------ the boards' runs
def board_runs(spec: Any, family: Any, runs: list, chosen: dict[Cell, Choice] | None = None) -> list:
    """The runs a board of ``family`` reads: never a tuning run; with a tuning stage, those at the family's own
    setting (``chosen`` None: the one-rate board) or at each cell's chosen setting (the tuned board). A board run
    with a tuning seed is an error: the tuning seeds are never final seeds."""
    forbidden = tuning_seeds(spec)
    out = []
    for run in runs:
        cfg = run.cfg
        if not run.feeds(family.key) or arm_of(cfg) is None or is_tuning_run(spec, run):
            continue
        if spec.tuning is None:
            out.append(run)
            continue
        seed = int(cfg.get("seed", 0))
        if seed in forbidden:
            raise UserError(f"{run.path}: a {family.key} board run at seed {seed}, one of the tuning seeds "
                            f"{sorted(forbidden)}: a tuning seed is never a final seed (SEEDS= must avoid them)")
        arm, budget = cell_of(spec, cfg)
        if chosen is None:
            wanted = shared_setting(spec, family, run.scale, arm)
        else:
            choice = chosen.get((arm, budget))
            wanted = choice.setting if choice is not None else None
        if same(setting_of(cfg, spec.tuning.keys_of(arm)), wanted):
            out.append(run)
    return out


# ------------------------------------------------------------------------------------------ how ranks moved
def rank_moves(spec: Any, one: dict[str, dict], tuned: dict[str, dict],
               budget: int) -> dict[str, tuple[float, float, int]]:
    """arm -> (average rank on the one-rate board, on the tuned board, families), both over the same cells: the
    (family, arm) pairs that have seeds on both boards at this budget, so a move is the tuning's and not a change
    of who is ranked."""
    one_ranks: dict[str, list[float]] = {}
    tuned_ranks: dict[str, list[float]] = {}
    for family in spec.families:
        a = {arm: c for (arm, b), c in one[family.key].items() if b == budget and c.values}
        t = {arm: c for (arm, b), c in tuned[family.key].items() if b == budget and c.values}
        common = sorted(set(a) & set(t))
        if len(common) < 2:
            continue
        higher = family.direction == "greater"
        for ranks, cells in ((one_ranks, a), (tuned_ranks, t)):
            for arm, rank in stats.ranks({arm: cells[arm].mean for arm in common}, higher).items():
                ranks.setdefault(arm, []).append(rank)
    return {arm: (stats.mean(one_ranks[arm]), stats.mean(tuned_ranks[arm]), len(one_ranks[arm])) for arm in one_ranks}


# ------------------------------------------------------------------------------------------ what the stages cost
@dataclass
class StageCost:
    name: str
    jobs: int = 0
    done: int = 0
    done_s: float = 0.0
    todo_s: float = 0.0                  # the estimate for the jobs not done yet

    @property
    def todo(self) -> int:
        return self.jobs - self.done


def _job_keys(spec: Any, tier: str, plan: list, role: str) -> list[tuple]:
    by_experiment = {}
    for family in spec.families:
        base = experiment_of(family, tier)
        for exp in (base, base + spec.tuning.suffix, base + spec.tuning.final_suffix):
            by_experiment[exp] = family
    keys = []
    for exp, jobs in expand(plan, tier).items():
        family = by_experiment[exp]
        for job in jobs:
            o = dict(item.split("=", 1) for item in job)
            arm = o["arm"]
            budget = None if arm == spec.reference else int(o["compare.budget"])
            own = dict(shared_setting(spec, family, tier, arm))
            setting = tuple((k, float(o.get(k, own[k]))) for k in spec.tuning.keys_of(arm))
            keys.append((family.key, role, arm, budget, int(o.get("seed", 0)), key_of(setting)))
    return keys


def _run_key(spec: Any, run: Any) -> tuple | None:
    cfg = run.cfg
    arm, budget = cell_of(spec, cfg)
    setting = setting_of(cfg, spec.tuning.keys_of(arm)) if arm else None
    if setting is None:
        return None
    tags = run.tags[1]
    family = next((f.key for f in spec.families if f.key in tags or f.key + spec.tuning.table_suffix in tags), None)
    role = "tuning" if is_tuning_run(spec, run) else "board"
    return family, role, arm, budget, int(cfg.get("seed", 0)), key_of(setting)


def seconds_per_cell(spec: Any, runs: list) -> Callable[[str, str, int | None], float | None]:
    """(family, arm, budget) -> the mean wall time of the finished one-rate board runs of that cell (else of the
    family's, else of every run's): what a job not yet run is estimated to take (a tuning or final run trains the
    same steps on the same model)."""
    cells: dict[tuple, list[float]] = {}
    for run in runs:
        if run.status != "ok" or is_tuning_run(spec, run) or not run.result.get("wall_s"):
            continue
        key = _run_key(spec, run)
        if key is not None:
            cells.setdefault((key[0], key[2], key[3]), []).append(float(run.result["wall_s"]))
            cells.setdefault((key[0],), []).append(float(run.result["wall_s"]))
            cells.setdefault((), []).append(float(run.result["wall_s"]))

    def estimate(family: str, arm: str, budget: int | None) -> float | None:
        for key in ((family, arm, budget), (family,), ()):
            if cells.get(key):
                return stats.mean(cells[key])
        return None
    return estimate


def stage_costs(spec: Any, tier: str, runs: list, stage: str | None = None) -> dict[str, Any]:
    """Per stage (the one-rate grid, the tuning stage, its extension beyond the edges, the final stage): jobs, done,
    run-seconds done and estimated for the rest; the final stage's jobs are those the tuning records ask for plus,
    for each cell still tuning, its final seeds (as if every such cell moved: an upper bound)."""
    stage = stage or spec.tuning.stage
    estimate = seconds_per_cell(spec, runs)
    done: dict[tuple, Any] = {}
    for run in runs:
        if run.status in ("ok", "failed") and run.scale == tier:
            key = _run_key(spec, run)
            if key is not None:
                done[key] = run
    out: dict[str, Any] = {}
    grid_keys = _job_keys(spec, tier, spec.grid_plan(tier), "board")
    plans = (("grid", grid_keys), ("tuning", _job_keys(spec, tier, spec.tuning_plan(tier, stage), "tuning")),
             ("extension", _job_keys(spec, tier, extension_plan(spec, tier, runs, stage), "tuning")),
             ("final", _job_keys(spec, tier, final_plan_at(spec, tier, runs, stage), "board")))
    for name, keys in plans:
        cost = StageCost(name, len(keys))
        for key in keys:
            run = done.get(key)
            if run is not None:
                cost.done += 1
                cost.done_s += float(run.result.get("wall_s") or 0.0)
            else:
                cost.todo_s += estimate(key[0], key[2], key[3]) or 0.0
        out[name] = cost
    # the cells still tuning: each one's final seeds, if it moved
    final_seeds: dict[tuple, int] = {}
    for key in grid_keys:
        final_seeds[(key[0], key[2], key[3])] = final_seeds.get((key[0], key[2], key[3]), 0) + 1
    pending = StageCost("pending")
    for family_key, cells in choices_of(spec, tier, runs, stage).items():
        for (arm, budget), choice in cells.items():
            if choice.status == "pending":
                n = final_seeds.get((family_key, arm, budget), 0)
                pending.jobs += n
                pending.todo_s += n * (estimate(family_key, arm, budget) or 0.0)
    out["pending"] = pending
    return out


def final_plan_at(spec: Any, tier: str, runs: list, stage: str) -> list:
    if stage == spec.tuning.stage:
        return final_plan(spec, tier, runs)
    return []   # another stage's finals would follow its own choices: counted as pending cells instead
