"""A fifth paper is one spec file, one experiment YAML and one published CSV (tests/fixtures/fifth_paper/): registered
from outside bench/papers, its experiment composed through Hydra's search path, its page regenerated from records
this test writes — and no file of the repository is touched on the way."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench import papers
from bench.report.__main__ import main as report_main
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "fifth_paper"


def load_fixture_spec():
    """The fixture's spec module, imported from its file (it is no module of bench/papers); no bytecode written."""
    module_spec = importlib.util.spec_from_file_location("toy_paper_fixture", FIXTURE / "toy.py")
    module = importlib.util.module_from_spec(module_spec)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module.SPEC


@pytest.fixture
def toy():
    spec = load_fixture_spec()
    papers.register(spec)
    yield spec
    papers.unregister(spec.name)


def repo_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def written_since(start_ns: int) -> list[Path]:
    """Files under the repository modified since ``start_ns`` (bytecode caches aside)."""
    changed = []
    for top, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", ".pytest_cache")]
        changed += [Path(top) / f for f in files if (Path(top) / f).stat().st_mtime_ns >= start_ns]
    return changed


def composed_job(method: str, seed: int) -> dict:
    """The fixture experiment's job as bench.train composes it, the fixture's conf/ on Hydra's search path."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.searchpath=[file://{FIXTURE / 'conf'}]", "experiment=toy_uuid_small",
                                          "scale=small", f"method={method}", f"seed={seed}"])
    return OmegaConf.to_container(cfg, resolve=False)


def write_run(runs: Path, name: str, config: dict, char_acc: float) -> None:
    """A finished run's files as bench.run leaves them (result.json, metrics.jsonl), numbers chosen here."""
    run = runs / name
    run.mkdir(parents=True)
    rows = [{"step": 20, "char_acc": char_acc / 2, "loss": 2.0}, {"step": 40, "char_acc": char_acc, "loss": 1.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = {"status": "ok", "config": config, "experiment": "toy_uuid_small", "task": "uuid", "scale": "small",
              "model": "stories260k", "steps": 40, "seed": config["seed"], "metrics": {"char_acc": char_acc},
              "train_loss": [[20, 2.0], [40, 1.0]], "examples": {"train": 64, "eval": 64}, "wall_s": 6.0,
              "git_sha": "0123456789"}
    (run / "result.json").write_text(json.dumps(result))


def test_a_fifth_paper_from_a_fixture_gets_its_page_without_touching_the_repository(toy, tmp_path):
    before, started = repo_state(), time.time_ns()
    assert papers.names() == ("olora", "cola", "salora", "mora", "toy")   # after the four, by its order
    papers.validate(toy)                                                 # its experiment and figures exist
    runs, out = tmp_path / "runs", tmp_path / "results"
    for seed in (1, 2, 3):
        for method, char_acc in (("lora", 0.40 + 0.01 * seed), ("mora", 0.60 + 0.01 * seed + 0.002 * (seed % 2))):
            config = composed_job(method, seed)
            assert config["report"] == {"paper": "toy", "tables": [1, "fig1"]}
            write_run(runs, f"{method}-s{seed}", config, char_acc)

    report_main(["--paper", "toy", "--runs", str(runs), "--out", str(out)])

    assert sorted(p.name for p in (out / "toy" / "records").iterdir()) == sorted(
        f"{m}-s{s}.json" for m in ("lora", "mora") for s in (1, 2, 3))
    page = (out / "toy" / "README.md").read_text()
    assert page.startswith("# Toy: A Throwaway Fifth Paper (test fixture)")
    assert "| MoRA memorises UUID pairs better than LoRA | Table 1 |" in page and "| 3 | **held** (Holm) |" in page
    assert "![fig1_memorisation](fig1_memorisation.png)" in page and (out / "toy" / "fig1_memorisation.png").stat().st_size
    with open(out / "toy" / "table1.csv", newline="") as f:
        cells = {(r["method"], r["metric"]): (r["reproduced"], r["published"]) for r in csv.DictReader(f)}
    assert cells == {("LoRA", "accuracy"): ("not run", "41.5"), ("MoRA", "accuracy"): ("not run", "63.2"),
                     ("MoRA", "perplexity"): ("not run", "n/a")}   # small-tier runs never fill a paper-scale cell
    stand_in = (out / "toy" / "table1.md").read_text().split("At scale=small")[1]
    assert "| stories260K (tiny stand-in) | MoRA | 8 | operator=sharing | 62.13 ± 1.01 | – |" in stand_in
    assert "## toy" in (out / "README.md").read_text()

    assert repo_state() == before
    assert written_since(started) == [], "the fifth paper wrote into the repository"


def test_a_registered_spec_may_not_take_a_discovered_name_or_order(toy):
    import dataclasses

    from bench.errors import UserError

    for clash in ({"name": "mora", "order": 99}, {"name": "toy2", "order": 4}):
        with pytest.raises(UserError, match="that name or order is taken") as err:
            papers.register(dataclasses.replace(toy, **clash))
        assert "\n" not in str(err.value)
