"""The published setup as checked data: every job of every paper-scale sweep agrees with each stated fact.

`bench/published/setup_checks.csv` holds one row per fact: the experiment, the config key, the value the paper
states (every job, or the set of values a sweep covers), an optional condition on the job, the fact's name in
`published_setup_facts.csv` and its citation. Facts marked `open: <why>` are known gaps: the test asserts they
are still broken, so a fix has to flip the row to `holds` (and nothing regresses silently either way).
"""

from __future__ import annotations

import csv
import itertools
from functools import cache

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import bench.resolvers  # noqa: F401  (${cwd:}, ${run_id:})
from tests.conftest import REPO

PUBLISHED = REPO / "bench" / "published"
CHECKS = list(csv.DictReader(open(PUBLISHED / "setup_checks.csv", newline="")))


def _literal(text: str):
    return yaml.safe_load(text.replace(";", ","))


def _value(cfg, key: str):
    if key == "trainer.global_batch":  # what the paper states: per-device batch × accumulation (one device)
        return cfg.trainer.per_device_train_batch_size * cfg.trainer.gradient_accumulation_steps
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


@cache
def sweep_jobs(experiment: str) -> tuple:
    """Every job of the experiment's paper-scale sweep, as `-m experiment=<e> scale=paper` would compose it. Config
    groups (method=, model=, task=) are composed; plain values (seed=, method.r=) are set on a copy, which is what
    Hydra's override does and keeps the ~150 compositions of all the sweeps to seconds."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        head = [f"experiment={experiment}", "scale=paper"]
        base = compose("train", overrides=head, return_hydra_config=True)
        params = OmegaConf.to_container(base.hydra.sweeper.params or {})
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
        groups = [[f"{o.get_key_element()}={v}" for v in (o.sweep_string_iterator() if o.is_sweep_override()
                                                          else [o.value()])] for o in parsed if "." not in o.key_or_group]
        values = [[(o.key_or_group, v) for v in (o.sweep_iterator() if o.is_sweep_override() else [o.value()])]
                  for o in parsed if "." in o.key_or_group or o.key_or_group == "seed"]
        groups = [g for g in groups if not g[0].startswith("seed=")]
        jobs = []
        for group_job in itertools.product(*groups):
            composed = compose("train", overrides=[*head, *group_job])
            for value_job in itertools.product(*values):
                cfg = composed.copy()
                for key, value in value_job:
                    OmegaConf.update(cfg, key, value, merge=False)
                jobs.append(cfg)
        return tuple(jobs)


def _applies(cfg, when: str) -> bool:
    if not when:
        return True
    key, negate, value = (*when.split("!=", 1)[:1], True, when.split("!=", 1)[1]) if "!=" in when \
        else (when.split("=", 1)[0], False, when.split("=", 1)[1])
    return (str(_value(cfg, key)) == value) != negate


def breaches(row: dict) -> list[str]:
    """The ways the experiment's jobs break the row's fact: one line each, naming experiment, key, values."""
    jobs = [cfg for cfg in sweep_jobs(row["experiment"]) if _applies(cfg, row["when"])]
    assert jobs, f"{row['experiment']}: no job matches when={row['when']!r}"
    where = f"{row['experiment']}: {row['key']}"
    if row["scope"] == "sweep":
        expected = {yaml.safe_dump(_literal(v)) for v in row["expected"].split("|")}
        got = {yaml.safe_dump(_value(cfg, row["key"])) for cfg in jobs}
        return [] if got == expected else [f"{where} sweeps {sorted(got)} but the paper's ({row['fact']}) is "
                                           f"{sorted(expected)}"]
    expected = _literal(row["expected"])
    bad = {repr(_value(cfg, row["key"])) for cfg in jobs if _value(cfg, row["key"]) != expected}
    return [f"{where}={v} but the paper's ({row['fact']}) is {expected!r}" for v in sorted(bad)]


def test_every_row_names_a_known_fact_paper_and_experiment():
    facts = {(r["paper"], r["fact"]) for r in csv.DictReader(open(PUBLISHED / "published_setup_facts.csv"))}
    experiments = {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")}
    for row in CHECKS:
        assert row["experiment"] in experiments and row["experiment"].startswith(row["paper"]), row
        assert row["scope"] in ("every", "sweep") and (row["status"] == "holds" or row["status"].startswith("open: "))
        named = row["source"] != "published_setup_facts.csv" or any(
            paper == row["paper"] and row["fact"].startswith(fact) for paper, fact in facts)
        assert named, f"fact {row['fact']!r} is not in published_setup_facts.csv"


@pytest.mark.parametrize("row", [r for r in CHECKS if r["status"] == "holds"],
                         ids=lambda r: f"{r['experiment']}:{r['key']}")
def test_paper_scale_configs_state_what_the_paper_states(row):
    assert breaches(row) == []


def test_open_facts_are_still_open():
    # One test over the open rows (none is a valid state: every checked fact holds), never an empty, skipped set.
    for row in (r for r in CHECKS if r["status"] != "holds"):
        assert breaches(row), f"{row['experiment']}: {row['key']} now agrees with the paper: mark the row 'holds'"


def test_a_changed_fact_fails_with_one_line_naming_it():
    row = next(r for r in CHECKS if r["experiment"] == "mora_pretrain" and r["key"] == "trainer.learning_rate")
    broken = {**row, "expected": "1.0e-3"}
    lines = breaches(broken)
    assert len(lines) == 1 and lines[0].startswith("mora_pretrain: trainer.learning_rate=0.0005 but the paper's")


def test_every_paper_scale_experiment_is_held_against_the_published_setup():
    """No paper-scale sweep escapes the check: each has at least one stated fact in setup_checks.csv."""
    from bench.papers import PAPERS, load

    checked = {row["experiment"] for row in CHECKS}
    unchecked = [e for paper in PAPERS for e in load(paper).experiment_files("paper") if e not in checked]
    assert not unchecked, f"paper-scale experiments with no row in setup_checks.csv: {unchecked}"


@pytest.mark.parametrize("model,published,exact", [("roberta-base", 1.33e6, 1_327_104), ("roberta-large", 3.54e6, 3_538_944)])
def test_salora_table1_adapter_counts_are_the_published_1_33M_and_3_54M(model, published, exact):
    """SaLoRA Table 1's #params (a secondary summary: LoRA and SaLoRA about 1.33M / 3.54M) are LoRA r 8 on the six
    weight matrices of every RoBERTa layer, as salora_table1 composes it (counted on the meta device, bench.plan);
    SaLoRA adds its r gates per module and keeps the rounding."""
    from bench.plan import count_parameters, model_config

    counts = {}
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for method in ("lora", "salora"):
            cfg = compose("train", overrides=["experiment=salora_table1", "scale=paper", f"model={model}",
                                              f"method={method}", "task=sst2"])
            method_cfg = OmegaConf.to_container(cfg.method, resolve=True)
            _, trainable, adapted = count_parameters(model_config(cfg.model), "seq_cls", 2, method_cfg)
            counts[method] = (trainable, adapted, method_cfg["r"])
    trainable, adapted, r = counts["lora"]
    adapters = sum(r * (fan_in + fan_out) for fan_in, fan_out in adapted)
    layers = model_config(compose_model(model)).num_hidden_layers
    assert len(adapted) == 6 * layers and adapters == exact and round(adapters / 1e6, 2) == published / 1e6
    assert counts["salora"][0] - trainable == r * len(adapted)   # the gates: one per component
    assert round((adapters + r * len(adapted)) / 1e6, 2) == published / 1e6


def compose_model(model: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"model={model}"]).model
