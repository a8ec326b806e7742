"""`smoke=true` and `make smoke`: a paper-scale job end to end on a miniature of its model, never a reported number."""

from __future__ import annotations

import json

from bench.report.records import collect_runs
from bench.run.miniature import miniature_shape
from bench.sweep.smoke import sweep_overrides
from omegaconf import OmegaConf
from tests.bench_helpers import run_cli, run_dirs


def test_the_smoke_sweep_covers_every_model_task_method_and_one_value_of_the_rest():
    overrides, jobs = sweep_overrides("cola_table2")
    by_key = dict(o.split("=", 1) for o in overrides)
    assert by_key["model"] == "opt-1.3b,llama2-7b" and by_key["method"] == "lora,cola"
    assert len(by_key["task"].split(",")) == 7 and by_key["seed"] == "1"  # five seeds in the paper's sweep
    assert jobs == 2 * 2 * 7


def test_the_miniature_widens_to_hold_the_papers_rank():
    assert miniature_shape("llama", OmegaConf.create({"r": 8}))["hidden_size"] == 64
    wide = miniature_shape("opt", OmegaConf.create({"r": 256}))
    assert wide["hidden_size"] == wide["word_embed_proj_dim"] == 256 and wide["ffn_dim"] == 512


def test_a_paper_scale_job_runs_as_smoke_and_the_report_never_reads_it(tmp_path):
    proc = run_cli(["experiment=mora_uuid", "scale=paper", "smoke=true", "method=mora", "method.r=256"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = run_dirs(tmp_path)
    assert run_dir.name.endswith("_smoke") and "llama2-7b" in run_dir.name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["smoke"] is True and result["scale"] == "paper" and result["steps"] == 2
    assert result["config"]["model"]["config"]["model_type"] == "llama"  # the 7B's architecture, in miniature
    assert result["config"]["method"]["r"] == 256 and result["config"]["trainer"]["learning_rate"] == 1e-4
    assert collect_runs(tmp_path) == ([], [])


def test_a_failed_sweep_fails_the_smoke_and_shows_its_output(monkeypatch, tmp_path, capsys):
    from bench.sweep import smoke

    def fake_sweep(experiment, overrides, runs_dir, log):
        log.write_text(f"Traceback\nRuntimeError: {experiment} broke\n")
        return (1 if experiment == "olora_fig2" else 0), 0.1

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(smoke, "print_plans", lambda plans: None)
    monkeypatch.setattr(smoke, "sweep_overrides", lambda experiment, fixed: ([], 2))
    monkeypatch.setattr(smoke, "run_sweep", fake_sweep)
    assert smoke.main(["olora"]) == 1
    out = capsys.readouterr().out
    assert "RuntimeError: olora_fig2 broke" in out and "olora_table1 broke" not in out   # only the failed one's log
    assert "failed experiments: ['olora_fig2']" in out and "olora 6 jobs; 6 in all" in out
