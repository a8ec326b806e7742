"""Everything a run writes goes through here: atomic files, the result.json schema, error.json, resume/skip."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import UserError

RESULT = "result.json"
ERROR = "error.json"
METRICS = "metrics.jsonl"
HYDRA_RECORD = ".hydra"
REPLACED = "replaced"  # force=true: the previous run's products, kept here until the new run finishes
RUN_PRODUCTS = (RESULT, ERROR, METRICS, "metrics.csv", "final_adapter.pt", "checkpoints", "export", HYDRA_RECORD)

RESULT_KEYS = (
    "method", "model", "task", "rank", "seed", "scale", "status", "metrics", "train_loss", "eval_loss",
    "trainable_params", "total_params", "train_flops", "wall_s", "config", "versions", "git_sha",
)


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same dir, fsync, rename: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from group members on a shared cluster
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def require_writable_dir(path: Path, key: str, hint: str = "") -> Path:
    """Create ``path`` and write a file in it, or raise a UserError naming ``key``: the real test (root passes
    os.access everywhere), done before work whose results would have nowhere to go."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"{key}={str(path)!r} is not writable ({err.strerror}); valid: a directory you can write{hint}") from err
    return path


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def completed_result(run_dir: Path) -> dict | None:
    result = read_json(Path(run_dir) / RESULT)
    return result if result and result.get("status") == "ok" else None


class MetricsLog:
    """metrics.jsonl: one JSON line per logging step, flushed and fsynced as written."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / METRICS

    def truncate_after(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint we restart from (they will be logged again)."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and _step_of(line) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill mid-write
        return out


def _step_of(line: str) -> float:
    try:
        return json.loads(line).get("step", float("inf"))
    except ValueError:
        return float("inf")


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "lm-eval", "datasets", "accelerate", "hydra-core"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_sha(repo: Path | None = None) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo or Path(__file__).resolve().parents[1],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_error(run_dir: Path, err: BaseException, step: int | None) -> None:
    atomic_write_json(Path(run_dir) / ERROR, {
        "status": "failed",
        "type": type(err).__name__,
        "message": str(err).splitlines()[0] if str(err) else type(err).__name__,
        "step": step,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "traceback": traceback.format_exception(type(err), err, err.__traceback__),
    })


def write_run_config(cfg, run_dir: Path) -> None:
    """.hydra/{config,overrides,hydra}.yaml as Hydra writes them, but only for a run that trains (Hydra's own writer,
    switched off by ``hydra.output_subdir: null``, would rewrite a skipped run's record with the new command's)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    record = Path(run_dir) / HYDRA_RECORD
    record.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record / "config.yaml", OmegaConf.to_yaml(cfg))
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        atomic_write_text(record / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))
        atomic_write_text(record / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra_cfg}))


def set_aside_previous_run(run_dir: Path) -> None:
    """force=true starts from step 0: the previous run's products move into ``replaced/`` (kept until the new run
    finishes). Where ``replaced/`` already holds one (an earlier force=true was interrupted), that one is kept and
    the interrupted attempt's products go."""
    run_dir = Path(run_dir)
    products = [run_dir / name for name in RUN_PRODUCTS if (run_dir / name).exists()]
    aside = run_dir / REPLACED
    if aside.exists():
        for path in products:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return
    if products:
        aside.mkdir()
        for path in products:
            path.rename(aside / path.name)


def drop_replaced_run(run_dir: Path) -> None:
    shutil.rmtree(Path(run_dir) / REPLACED, ignore_errors=True)
