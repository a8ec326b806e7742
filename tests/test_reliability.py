"""Nothing lost under kills, failures and bad input."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.cli import preflight
from bench.errors import UserError
from bench.report.__main__ import main as report_main
from tests.bench_helpers import FAST, REPO, cli_env, run_cli, run_dirs, run_inprocess

pytestmark = pytest.mark.slow


def bad_inputs(tmp):
    malformed = tmp / "malformed.json"
    malformed.write_text("[{\"instruction\": ")
    fieldless = tmp / "fieldless.jsonl"
    fieldless.write_text('{"question": "q"}\n')
    listless = tmp / "listless.json"
    listless.write_text('"just a string"')
    empty_csv = tmp / "empty.csv"
    empty_csv.write_text("")
    numeric = tmp / "numeric.jsonl"
    numeric.write_text('{"instruction": "add", "input": "2 + 3", "output": 5}\n')
    return [  # (overrides, words the one line must contain)
        (["method=loraa"], ["method=loraa", "valid: adalora"]),
        (["method.rr=8"], ["method.rr=8", "valid: alpha"]),
        (["model=gpt5"], ["model=gpt5", "valid:", "stories260k"]),
        (["task=arc_hard"], ["task=arc_hard", "valid:", "arc_easy"]),
        (["scale=huge"], ["scale=huge", "valid: paper, small, tiny"]),
        (["logger=tensorboard"], ["logger=tensorboard", "valid: csv, wandb"]),
        (["hydra/launcher=slurmm"], ["slurmm", "valid:"]),
        (["trainer.learning_rat=1"], ["trainer.learning_rat=1", "learning_rate"]),
        (["task.nonexistent=1"], ["task.nonexistent=1", "valid:"]),
        (["method.r=0"], ["r=0", "valid: an integer >= 1"]),
        (["method.r=abc"], ["r='abc'", "valid: an integer >= 1"]),
        (["method.dropout=2"], ["dropout=2", "0 <= dropout < 1"]),
        (["method=mora", "method.mora_type=diag"], ["mora_type='diag'", "rotation"]),
        (["method=salora", "method.target_density=1.5"], ["target_density=1.5", "0 < b <= 1"]),
        (["method=salora", "method.t_start=0.5", "method.t_end=0.2"], ["t_end=0.2", "t_start=0.5 < t_end"]),
        (["method=cola", "method.knots=[1.5]"], ["knots=[1.5]", "fractions in (0, 1)"]),
        (["method=cola", "method.ranks=[8,4,2]"], ["ranks=[8, 4, 2]", "one per link"]),
        (["method.r=4096"], ["r=4096", "min(out, in)"]),
        (["method.target_modules=[nope]"], ["target_modules=['nope']", "q_proj"]),
        (["model=tiny_roberta", "task=uuid"], ["tiny_roberta is an encoder", "task=uuid"]),
        (["model.path=/nonexistent/model"], ["model.path='/nonexistent/model'", "config.json"]),
        (["model.dtype=float64"], ["model.dtype='float64'", "valid:"]),
        (["task=arc_easy", "task.data_files.train=/nonexistent.json"], ["task.data_files.train='/nonexistent.json'", "instruction"]),
        (["task=arc_easy", f"task.data_files.train={malformed}"], [str(malformed), "unreadable as json", "instruction"]),
        (["task=gsm8k", f"task.data_files.train={fieldless}"], [str(fieldless), "lacks fields ['answer']"]),
        (["task=arc_easy", f"task.data_files.train={listless}"], [str(listless), "instruction"]),
        (["task=rte", "task.format=xml"], ["task.format='xml'", "jsonl"]),
        (["scale=paper", "model=tinyllama-1.1b", "task=arc_easy"], ["scale=paper", "CUDA"]),
        (["paths.runs_dir=/proc/lorabench/runs"], ["paths.runs_dir='/proc/lorabench/runs'", "not writable"]),
        (["task=arc_easy", f"task.data_files.train={empty_csv}"], [str(empty_csv), "has no records"]),
        (["task=alpaca", f"task.data_files.train={numeric}"], [str(numeric), "output=5 (int)", "a string"]),
        ([f"hydra.run.dir={listless}"], [f"hydra.run.dir='{listless}'", "not writable", "File exists"]),
        (["-m", "hydra/launcher=slurm"], ["hydra/launcher=slurm", "no sbatch", "valid here: basic, joblib"]),
        (["method=prefix", "method.num_virtual_tokens=0"], ["prefix: invalid num_virtual_tokens=0", "an integer >= 1"]),
    ]


def test_bad_inputs_give_one_line_exit_2_and_leave_results_untouched(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    finished = runs / "finished-run"
    finished.mkdir(parents=True)
    (finished / "result.json").write_text('{"status": "ok", "metrics": {"acc": 0.5}}\n')
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    cases = bad_inputs(tmp_path)
    assert len(cases) >= 25
    # Every case runs in this process first (a process each costs seconds of imports): through the command line's own
    # checks (bench/cli.py preflight, before Hydra starts a run), and where those let it through, through the run
    # itself (bench/run/execute.py), which must refuse it with one UserError line. Every third case of either kind
    # then runs as a real process, so the exit code 2 and the single line on stderr are a process's own on both paths.
    for key in ("LORABENCH_RUNS", "LORABENCH_DATA", "TQDM_DISABLE"):
        monkeypatch.setenv(key, cli_env(runs)[key])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    refused_first, refused_in_run = [], []
    for i, (overrides, words) in enumerate(cases):
        argv = [*overrides, "trainer.max_steps=2"]
        try:
            preflight(argv)
        except UserError as err:
            message = str(err)
            refused_first.append((overrides, words))
        else:
            with pytest.raises(UserError) as caught:
                run_inprocess(argv, tmp_path / f"in-process-{i}")
            message = str(caught.value)
            refused_in_run.append((overrides, words))
        assert "\n" not in message and all(w in message for w in words), (overrides, message)
    assert len(refused_first) >= 10 and len(refused_in_run) >= 10, (len(refused_first), len(refused_in_run))
    cases = refused_in_run[::3] + refused_first[::3]

    def attempt(case):
        overrides, words = case
        return case, run_cli([*overrides, "trainer.max_steps=2"], runs, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(attempt, cases))
    for (overrides, words), proc in outcomes:
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (overrides, proc.returncode, proc.stderr[-1500:])
        assert len(lines) == 1 and lines[0].startswith("error: "), (overrides, proc.stderr[-1500:])
        assert "Traceback" not in proc.stderr and all(w in lines[0] for w in words), (overrides, lines[0])
    assert {p: p.read_bytes() for p in before} == before, "an existing result changed"
    assert not list(runs.rglob("result.json"))[1:], "a bad input produced a result"


def test_a_poisoned_job_fails_alone_and_the_report_says_failed(tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(["-m", "model=stories260k,tiny_roberta", *FAST, "trainer.max_steps=4", "report.paper=mora",
                    "report.tables=[2]"], runs, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the sweep as a whole failed, after its siblings ran
    assert "FAILED" in proc.stderr and "tiny_roberta is an encoder" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sweep: 1 job(s) failed")
    dirs = run_dirs(runs)
    ok = [d for d in dirs if (d / "result.json").exists()]
    failed = [d for d in dirs if (d / "error.json").exists()]
    assert len(ok) == 1 and len(failed) == 1 and "tiny_roberta" in failed[0].name
    error = json.loads((failed[0] / "error.json").read_text())
    assert error["status"] == "failed" and error["type"] == "UserError" and "encoder" in error["message"]
    report_main(["--paper", "mora", "--runs", str(runs), "--out", str(tmp_path / "results")])
    table = (tmp_path / "results" / "mora" / "table2.md").read_text()
    row = next(line for line in table.splitlines() if "| tiny RoBERTa" in line)
    assert "failed" in row
    assert "Failed runs" in (tmp_path / "results" / "mora" / "README.md").read_text()


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
    proc = run_cli([*FAST, "trainer.learning_rate=1e12", "trainer.max_grad_norm=0", "trainer.logging_steps=1"], tmp_path)
    assert proc.returncode != 0
    error = json.loads(next(tmp_path.glob("*/error.json")).read_text())
    assert error["type"] == "NonFiniteLoss" and isinstance(error["step"], int) and f"at step {error['step']}" in error["message"]
    assert not list(tmp_path.glob("*/result.json"))


def _metrics_stamps(runs) -> dict:
    return {p: p.stat().st_mtime_ns for p in runs.glob("*/metrics.jsonl") if p.exists()}


def test_random_kills_then_resume_match_an_uninterrupted_run(tmp_path):
    args = ["method=salora", "method.dropout=0.1", *FAST, "trainer.max_steps=32", "trainer.save_steps=4",
            "method.t_start=0.2", "method.t_end=0.6"]
    reference = run_cli(args, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    ref = json.loads(next((tmp_path / "reference").glob("*/result.json")).read_text())

    runs = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        stamps = _metrics_stamps(runs)
        proc = subprocess.Popen([sys.executable, "-m", "bench.train", *args], cwd=REPO, env=cli_env(runs),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Start-up (imports, validation, model load) takes ~5-8 s depending on load: wait for the run to exist,
        # then land the kill at a random point of training, saving or writing.
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and _metrics_stamps(runs) == stamps:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        run_dir = next(runs.glob("*"), None)
        if run_dir and (run_dir / "result.json").exists():
            break
    assert kills >= 1
    run_dir = run_dirs(runs)[0]
    # a partial checkpoint (killed mid-save: no COMPLETE marker) must be ignored, whatever its step
    (run_dir / "checkpoints" / "checkpoint-999").mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints" / "checkpoint-999" / "model.safetensors").write_bytes(b"garbage")
    final = run_cli(args, runs)
    assert final.returncode == 0, final.stderr[-2000:]
    res = json.loads((run_dir / "result.json").read_text())
    assert res["steps"] == 32 and res["train_loss"] == ref["train_loss"]
    assert res["metrics"]["eval_loss"] == ref["metrics"]["eval_loss"] and res["metrics"]["density"] == ref["metrics"]["density"]
    record = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (run_dir / ".hydra").iterdir()}
    assert {p.name for p in record} == {"config.yaml", "overrides.yaml", "hydra.yaml"}
    again = run_cli(args, runs)
    assert again.returncode == 0 and "skip:" in again.stdout  # completed runs are skipped on re-run
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (run_dir / ".hydra").iterdir()} == record  # untouched


def test_preempted_submitit_job_is_requeued_and_resumes(tmp_path):
    """The SLURM path on this machine: submitit's local executor, the job signalled as a scheduler would."""
    import psutil

    runs = tmp_path / "runs"
    args = ["-m", "hydra/launcher=local", *FAST, "trainer.max_steps=40", "trainer.save_steps=4"]
    sweep = subprocess.Popen([sys.executable, "-m", "bench.train", *args], cwd=REPO, env=cli_env(runs),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    signalled = None
    while time.time() < deadline and signalled is None:
        if list(runs.glob("*/checkpoints/checkpoint-*/COMPLETE")):
            workers = [p for p in psutil.Process(sweep.pid).children(recursive=True)
                       if "submitit" in " ".join(p.cmdline()) and "_submit" in " ".join(p.cmdline())]
            if workers:
                signalled = workers[-1]
                signalled.send_signal(signal.SIGUSR2)  # submitit's preemption/timeout signal
        time.sleep(0.1)
    assert signalled is not None, "no submitit worker found to signal"
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out[-3000:]
    run_dir = next(p for p in runs.iterdir() if (p / ".hydra").exists())
    result = json.loads((run_dir / "result.json").read_text())
    assert result["steps"] == 40
    logs = "\n".join(p.read_text(errors="replace") for p in runs.rglob("*_log.*"))
    assert "Requeued" in logs or "requeue" in logs.lower(), logs[-2000:]
    assert "resume:" in logs, "the requeued job did not resume from its checkpoint"


def test_a_sweep_with_a_failed_job_exits_nonzero_after_its_siblings_finish(tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli(["-m", *FAST, "trainer.max_steps=2", "task.max_length=8,96"], runs)  # 8 cuts every UUID pair
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sweep: 1 job(s) failed") and "error.json" in last
    assert len(list(runs.glob("*/result.json"))) == 1 and len(list(runs.glob("*/error.json"))) == 1


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    runs = tmp_path / "runs"
    # As from a terminal: SIGINT at its default in the child. A disposition of SIG_IGN is inherited (something earlier
    # in a long pytest session can leave it so), and Python then never raises KeyboardInterrupt at all.
    proc = subprocess.Popen([sys.executable, "-m", "bench.train", *FAST, "trainer.max_steps=400"], cwd=REPO,
                            env=cli_env(runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/metrics.jsonl")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted:") and "Traceback" not in err


@pytest.mark.parametrize("damage", ["result", "adapter"])
def test_export_of_a_damaged_run_is_one_line_exit_2(damage, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text('{"method": "lora", "config": {' if damage == "result" else '{"config": {}}')
    (run_dir / "final_adapter.pt").write_bytes(b"PK\x03\x04 cut short")
    proc = subprocess.run([sys.executable, "-m", "bench.export", str(run_dir)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-1500:]
    assert ("result.json is damaged" if damage == "result" else "final_adapter.pt is damaged") in lines[0]
