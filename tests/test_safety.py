"""Safety for people who share run directories: nothing received runs code, no value becomes a path outside the runs
directory or a shell command, one process writes a run at a time and only the run its directory was made for, the
report never drops a record without naming it, an export is whole or absent, and every command refuses a bad
option in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from bench.errors import UserError
from bench.records import RunInProgress, is_locked, run_lock
from bench.run.trainer import BENCH_STATE, COMPLETE, checkpoint_digests
from tests.bench_helpers import FAST, REPO, SHARED, cli_env, run_cli, run_dirs, run_inprocess

pytestmark = pytest.mark.slow


class WritesAFile:
    """A pickle that, if loaded with full unpickling, creates a file: what a hostile checkpoint would do."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def plant_pickle(path: Path, sentinel: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"method": WritesAFile(sentinel), "state": {}}, path)


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in text, text[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small finished run (kept pristine: tests copy it)."""
    tmp = tmp_path_factory.mktemp("finished")
    result, run_dir = run_inprocess([*FAST, "seed=5"], tmp)
    return result, run_dir


def copy_run(finished_run, tmp_path: Path) -> Path:
    _, run_dir = finished_run
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


# ------------------------------------------------------------------------------------------------- 1. no unpickling
def test_no_suite_code_unpickles_with_weights_only_false():
    offenders = [str(p.relative_to(REPO)) for folder in ("bench", "methods") for p in (REPO / folder).rglob("*.py")
                 if "weights_only=False" in p.read_text()]
    assert offenders == []


def test_a_planted_pickle_in_a_checkpoint_never_runs_at_resume(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "result.json").unlink()   # an interrupted run: the next command resumes from its newest checkpoint
    ckpt = run_dir / "checkpoints" / "checkpoint-16"
    sentinel = tmp_path / "pwned-at-resume"
    plant_pickle(ckpt / BENCH_STATE, sentinel)
    (ckpt / COMPLETE).write_text(json.dumps({"step": 16, "sha256": checkpoint_digests(ckpt)}))  # a matching marker
    proc = run_cli([*FAST, "seed=5", f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 2
    assert "is not a safe checkpoint" in one_line(proc.stderr) and BENCH_STATE in proc.stderr
    assert not sentinel.exists()


def test_a_planted_pickle_as_the_final_adapter_never_runs_at_export(finished_run, tmp_path, capsys):
    from bench.export import FINAL_STATE
    from bench.export import main as export_main

    run_dir = copy_run(finished_run, tmp_path)
    sentinel = tmp_path / "pwned-at-export"
    plant_pickle(run_dir / FINAL_STATE, sentinel)
    with pytest.raises(SystemExit) as exit_:
        export_main([str(run_dir)])
    assert exit_.value.code == 2 and not sentinel.exists()
    assert "is not a safe checkpoint" in one_line(capsys.readouterr().err)


def test_export_builds_the_method_by_name_never_from_a_target_in_the_record(finished_run, tmp_path, capsys):
    from bench.export import main as export_main

    run_dir = copy_run(finished_run, tmp_path)
    sentinel = tmp_path / "truncated-by-target"
    sentinel.write_text("precious")
    result = json.loads((run_dir / "result.json").read_text())
    result["config"]["method"] = {"_target_": "builtins.open", "file": str(sentinel), "mode": "w", "name": "lora",
                                  "r": 8, "_args_": [str(sentinel), "w"]}
    (run_dir / "result.json").write_text(json.dumps(result))
    with pytest.raises(SystemExit):
        export_main([str(run_dir)])
    assert sentinel.read_text() == "precious"
    assert "invalid hyperparameter" in one_line(capsys.readouterr().err)  # 'file', 'mode': not LoRA's
    result["config"]["method"] = {"_target_": "builtins.open", "name": "nosuch"}
    (run_dir / "result.json").write_text(json.dumps(result))
    with pytest.raises(SystemExit):
        export_main([str(run_dir)])
    assert "method.name='nosuch' is not a method of this suite" in one_line(capsys.readouterr().err)


def test_a_planted_pickle_in_a_run_dir_never_runs_at_report(finished_run, tmp_path, capsys):
    from bench.report.__main__ import main as report_main

    run_dir = copy_run(finished_run, tmp_path / "runs")
    sentinel = tmp_path / "pwned-at-report"
    for name in ("final_adapter.pt", "checkpoints/checkpoint-16/bench_state.pt", "checkpoints/checkpoint-8/optimizer.pt"):
        plant_pickle(run_dir / name, sentinel)
    (tmp_path / "runs" / "pickled").mkdir()
    plant_pickle(tmp_path / "runs" / "pickled" / "result.json", sentinel)   # bytes of a pickle where JSON belongs
    with pytest.raises(SystemExit) as exit_:
        report_main(["--paper", "mora", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 1 and not sentinel.exists()
    assert "pickled/result.json: unreadable" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- 2. path components
BAD_NAMES = ["..", "x/../../escaped", "/abs", "a\x00b"]


@pytest.mark.parametrize("key", ["method.name", "model.name", "task.name", "scale.name"])
@pytest.mark.parametrize("value", BAD_NAMES)
def test_a_name_that_would_leave_the_runs_dir_is_one_line(key, value, tmp_path):
    from bench.cli import preflight

    with pytest.raises(UserError) as err:
        preflight([f"{key}={value}", f"paths.runs_dir={tmp_path}"])
    assert "\n" not in str(err.value) and "\x00" not in str(err.value)
    assert f"{key}={value!r} is not valid" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("group", ["experiment", "method", "model", "task", "scale", "trainer"])
@pytest.mark.parametrize("value", ["../method/lora", "..", "x/y"])
def test_a_config_group_option_outside_its_folder_is_one_line(group, value, tmp_path):
    from bench.cli import preflight

    with pytest.raises(UserError) as err:
        preflight([f"{group}={value}", f"paths.runs_dir={tmp_path}"])
    assert f"{group}={value!r} is not valid" in str(err.value) and "\n" not in str(err.value)


def test_the_run_id_refuses_a_bad_name_even_without_the_preflight(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.train", "model.name=x/../../escaped", *FAST],
                          cwd=REPO, env={**cli_env(tmp_path), "HYDRA_FULL_ERROR": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "cannot name a run directory" in proc.stderr
    assert not (tmp_path.parent / "escaped").exists() and not any(tmp_path.parent.glob("escaped*"))


# ------------------------------------------------------------------------------------------------- 3. make variables
def make(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The repo's Makefile with this interpreter's environment as its venv (setup is not re-run)."""
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**cli_env(tmp_path / "runs"), "HOME": str(tmp_path)})


@pytest.mark.parametrize("args, named", [
    (["reproduce-olora", "SEEDS=1;touch {f}"], "SEEDS='1;touch {f}' is not valid"),
    (["reproduce-olora", "SCALE=$$(touch {f})"], "SCALE='$(touch {f})' is not valid"),
    (["smoke", "PAPERS=x; touch {f}"], "smoke: 'x;'"),
    (["compare", "LAUNCHER=`touch {f}`"], "LAUNCHER='`touch {f}`' is not valid"),
    (["compare", "JOBS=2;touch {f}"], "JOBS='2;touch {f}' is not valid"),
    (["reproduce-x;touch {f}"], "PAPER='x;touch {f}' is not valid"),
])
def test_make_variables_are_validated_and_never_run_as_commands(args, named, tmp_path):
    sentinel = f"pwned-{os.getpid()}"   # relative: make's working directory is the repo (a '/' would split a target)
    proc = make(*[a.format(f=sentinel) for a in args], tmp_path=tmp_path)
    assert proc.returncode != 0 and not (REPO / sentinel).exists()
    assert named.format(f=sentinel) in one_line(proc.stderr)


def test_a_failed_sweep_does_not_stop_the_others_and_the_command_names_it(tmp_path, capsys):
    from bench.sweep.launch import Sweep, run_sweeps

    sweeps = [Sweep("bad", "demo", ["scale=tiny", "method.r=0", f"paths.runs_dir={tmp_path}"]),
              Sweep("good", "demo", ["scale=tiny", "method=lora", *FAST[1:], "task.num_eval=4",
                                     f"paths.runs_dir={tmp_path}", f"paths.shared_data={SHARED / 'data'}"])]
    failed = run_sweeps("test", sweeps, tmp_path, cli_env(tmp_path))
    assert failed == ["bad"]
    assert len(list(tmp_path.glob("lora-r8_*/result.json"))) == 1   # the second sweep ran after the first failed


def test_reproduce_exits_1_naming_the_sweeps_that_failed(monkeypatch, capsys):
    import bench.sweep.reproduce as reproduce

    monkeypatch.setattr(reproduce, "run_sweeps", lambda label, sweeps, runs_dir, env: [sweeps[0].title])
    monkeypatch.setattr(reproduce.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    assert reproduce.main(["olora", "--scale", "small"]) == 1
    assert "1 sweep(s) did not finish cleanly: olora / olora_small (small)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- 4. one writer
def test_a_second_command_on_a_run_in_progress_is_one_line_exit_2(tmp_path):
    run_dir = tmp_path / "busy"
    with run_lock(run_dir):
        proc = run_cli([*FAST, f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 2 and "is in progress elsewhere" in one_line(proc.stderr)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]   # nothing written, not even an error.json


def test_the_lock_dies_with_its_holder_and_wait_queues_behind_it(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bench.records import run_lock\n"
                               f"with run_lock({str(run_dir)!r}):\n    print('held', flush=True); time.sleep(600)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held" and is_locked(run_dir)
    with pytest.raises(RunInProgress) as err:
        with run_lock(run_dir):
            pass
    assert f"pid {holder.pid}" in str(err.value)
    threading.Timer(1.0, holder.kill).start()
    started = time.time()
    with run_lock(run_dir, wait=True):   # queued behind the holder; the kernel released its lock when it died
        assert time.time() - started >= 0.5
    holder.wait()
    assert not is_locked(run_dir)


def test_two_identical_commands_at_once_leave_one_clean_run(tmp_path):
    args = [*FAST, "trainer.max_steps=40", "seed=3"]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.train", *args], cwd=REPO, env=cli_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 2]), outs   # the second either found it finished (skip) or refused it
    if codes == [0, 2]:
        assert any("is in progress elsewhere" in err for _, err in outs)
    (run_dir,) = run_dirs(tmp_path)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [s for s, line in zip(steps, (run_dir / "metrics.jsonl").read_text().splitlines()) if '"loss"' in line]
    assert train_steps == sorted(set(train_steps))   # no duplicated or out-of-order steps
    result = json.loads((run_dir / "result.json").read_text())
    assert [s for s, _ in result["train_loss"]] == sorted({s for s, _ in result["train_loss"]})


@pytest.mark.parametrize("change, named", [(["seed=99"], "seed: 5 → 99"), (["method=olora"], "method.")])
def test_a_run_dir_of_another_configuration_is_refused_never_resumed_or_skipped(finished_run, change, named, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    proc = run_cli([*FAST, "seed=5", *change, f"hydra.run.dir={run_dir}"], tmp_path)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "holds another run" in line and named in line and "neither resumed nor skipped" in line
    after = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before   # nothing touched: no error.json, no resumed checkpoint


# ------------------------------------------------------------------------------------------------- 5. report
@pytest.mark.parametrize("damage, reason", [
    (lambda r: r["result"]["metrics"].update(char_acc=float("nan")), "NaN or Infinity at result.metrics.char_acc"),
    (lambda r: r["result"]["metrics"].update(char_acc=float("inf")), "NaN or Infinity at result.metrics.char_acc"),
    (lambda r: r["result"].update(train_loss=[]), "training curve (train_loss) is empty"),
    (lambda r: r.update(result=None), "its result is NoneType, not an object"),
    (lambda r: r["result"].update(config={"method": "lora"}), "config lacks method, model or task"),
    (lambda r: r.update(metrics="rows"), "metric rows are not a list"),
    ("truncated", "unreadable"),
])
def test_a_record_the_report_cannot_use_is_named_and_stops_it_unless_allowed(damage, reason, tmp_path, capsys):
    from bench.report.__main__ import main as report_main

    sources = sorted((REPO / "results" / "mora" / "records").glob("mora-r4_*uuid_small_s1_*.json"))[:2]
    records = tmp_path / "out" / "mora" / "records"
    records.mkdir(parents=True)
    for path in sources:
        shutil.copy(path, records / path.name)
    source, target = sources[0], records / sources[0].name
    if damage == "truncated":
        target.write_text(source.read_text()[:200])
    else:
        record = json.loads(source.read_text())
        damage(record)
        target.write_text(json.dumps(record))
    args = ["--paper", "mora", "--runs", str(tmp_path / "no-runs"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        report_main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and f"{target}: " in err and reason in err
    assert not (tmp_path / "out" / "mora" / "README.md").exists()   # nothing written
    report_main([*args, "--allow-missing"])
    page = (tmp_path / "out" / "mora" / "README.md").read_text()
    assert "Excluded records (1)" in page and f"`{target.name}`: " in page and reason in page


# ------------------------------------------------------------------------------------------------- 6. export
def test_a_killed_export_leaves_no_export_that_looks_complete_and_keeps_the_previous(finished_run, tmp_path,
                                                                                      monkeypatch, capsys):
    import bench.export as export

    run_dir = copy_run(finished_run, tmp_path)
    export.main([str(run_dir)])
    previous = sorted(p.relative_to(run_dir) for p in (run_dir / "export").rglob("*"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_peft", killed)   # after the probe and the merged model are written
    with pytest.raises(KeyboardInterrupt):
        export.main([str(run_dir)])
    assert sorted(p.relative_to(run_dir) for p in (run_dir / "export").rglob("*")) == previous
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".export")] == []
    shutil.rmtree(run_dir / "export")
    with pytest.raises(KeyboardInterrupt):
        export.main([str(run_dir)])
    assert not (run_dir / "export").exists()


@pytest.mark.parametrize("errno_name, said", [("ENOSPC", "no space left on the device"), ("EROFS", "cannot write")])
def test_a_full_or_read_only_disk_at_export_is_one_line(finished_run, errno_name, said, tmp_path, monkeypatch, capsys):
    import errno

    import bench.export as export

    run_dir = copy_run(finished_run, tmp_path)

    def refuse(*args, **kwargs):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(run_dir / "export"))

    monkeypatch.setattr(export, "save_probe", refuse)
    with pytest.raises(SystemExit) as exit_:
        export.main([str(run_dir)])
    assert exit_.value.code in (1, 2) and said in one_line(capsys.readouterr().err)
    assert [p.name for p in run_dir.iterdir() if "export" in p.name] == []


def test_an_adapter_file_of_another_run_is_refused_not_exported_untrained(finished_run, tmp_path, capsys):
    import bench.export as export

    run_dir = copy_run(finished_run, tmp_path)
    saved = torch.load(run_dir / export.FINAL_STATE, weights_only=True)
    other = {"state": {k.replace("lora_A", "lora_Z"): v for k, v in saved["state"].items()}, "method": saved["method"]}
    torch.save(other, run_dir / export.FINAL_STATE)
    with pytest.raises(SystemExit) as exit_:
        export.main([str(run_dir)])
    assert exit_.value.code == 2 and "does not match the run's method and model" in one_line(capsys.readouterr().err)
    assert not (run_dir / "export").exists()


# ------------------------------------------------------------------------------------------------- 7. every CLI
@pytest.mark.parametrize("module, args, named", [
    ("bench.train", ["--bogus"], "option '--bogus' is not valid"),
    ("bench.train", ["method=nosuch"], "method=nosuch is not an option"),
    ("bench.report", ["--paper", "nosuch"], "invalid choice: 'nosuch'"),
    ("bench.report", ["--bogus"], "unrecognized arguments: --bogus"),
    ("bench.compare", ["--family=nosuch"], "unrecognized arguments: --family=nosuch"),
    ("bench.papers", ["nosuch"], "not understood"),
    ("bench.papers", ["experiments", "mora", "huge"], "SCALE=huge"),
    ("bench.perf", ["--bogus"], "'--bogus' is not key=value"),
    ("bench.perf", ["reps=abc"], "perf.reps"),
    ("bench.perf_table4", ["--bogus"], "'--bogus' is not one of"),
    ("bench.export", ["--bogus"], "not understood"),
    ("bench.smoke", ["--bogus"], "option '--bogus' is not valid"),
    ("bench.smoke", ["nosuch"], "smoke: 'nosuch'; valid:"),
    ("bench.reproduce", ["nosuch"], "PAPER='nosuch' is not valid"),
    ("bench.reproduce", ["--seeds", "a"], "SEEDS='a' is not valid"),
])
def test_every_cli_rejects_a_bad_option_in_one_line_exit_2(module, args, named, tmp_path):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=cli_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert named in one_line(proc.stderr)
