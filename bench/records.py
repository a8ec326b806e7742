"""Everything a run writes goes through here: atomic files, the result.json schema, error.json, resume/skip."""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import platform
import shutil
import subprocess
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError
from .paths import REPO

UNSAFE_HINT = "delete it, or re-run the training command with force=true to write it again"

RESULT = "result.json"
LOCK = ".lock"               # held (flock) by the process training in the run dir; the OS releases it on death
IDENTITY = "run_identity.json"  # the config that defines the run (bench.resolvers.run_identity), written once
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


class UnsafeFile(UserError):
    """A file that would run code when loaded (a pickle of more than tensors and plain containers): never loaded."""


class DamagedFile(UserError):
    """A file cut short or corrupted (a kill mid-write, a full disk, a bad copy)."""


def load_tensor_file(path: Path) -> Any:
    """A torch file of tensors and plain containers, loaded with ``weights_only=True``: a run directory someone hands
    over must never run code in the loading process. Tensors keep the device they were saved from, as on a resume."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refuses any global it does not know: code to run
        raise UnsafeFile(f"{path} is not a safe checkpoint (it holds objects that run code when loaded); it was not "
                         f"loaded: {UNSAFE_HINT}") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        if isinstance(err, OSError) and not path.is_file():
            raise
        raise DamagedFile(f"{path} is damaged ({type(err).__name__}); {UNSAFE_HINT}") from err


def _non_finite(node: Any, path: str = "") -> str | None:
    """The first place in a JSON value holding NaN or ±Infinity (Python's json reads both), or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return path or "(top)"
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite(value, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found
    return None


def record_problem(status: Any, result: Any, rows: Any) -> str | None:
    """Why a run record (status, result.json, metric rows) cannot be used as data, or None. A finished run must
    carry its config, its metrics, finite numbers throughout and a non-empty training curve; a failed one its
    config. The report names every record this rejects instead of dropping it."""
    if status not in ("ok", "failed"):
        return f"status={status!r}; valid: ok, failed"
    if not isinstance(result, dict):
        return f"its result is {type(result).__name__}, not an object"
    config = result.get("config")
    if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in ("method", "model", "task")):
        return "its config lacks method, model or task"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "its metric rows are not a list of objects"
    if status == "failed":
        return None
    if not isinstance(result.get("metrics"), dict):
        return "it has no metrics object"
    bad = _non_finite(result, "result") or _non_finite(rows, "metrics")
    if bad:
        return f"it holds NaN or Infinity at {bad}"
    if not result.get("train_loss"):
        return "its training curve (train_loss) is empty"
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
            ["git", "rev-parse", "HEAD"], cwd=repo or REPO,
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


# ----------------------------------------------------------------------------------------------- one run, one writer
class RunRefused(UserError):
    """The run directory is not this command's to write (in use, or another configuration's run): nothing in it is
    touched, not even an error.json."""


class RunInProgress(RunRefused):
    """Another process holds the run directory's lock."""


@contextmanager
def run_lock(run_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the run directory's lock (flock on ``.lock``) for the block: a second command on the same run says so in
    one line (or, with ``wait``, queues behind it). The kernel drops the lock when its holder dies, so a killed run
    never leaves a stale lock behind; the holder's pid/host in the file are only for the message."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunInProgress(f"run {run_dir} is in progress elsewhere ({holder}); wait for it to finish, or add "
                                "wait_for_lock=true to queue behind it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def is_locked(run_dir: Path) -> bool:
    """Is a process training in ``run_dir`` right now?"""
    path = Path(run_dir) / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def identity_differences(stored: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ between two run identities, as ``key: stored → this command``."""
    a, b = _flatten(stored), _flatten(current)
    return [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def stored_identity(run_dir: Path) -> dict | None:
    """The identity of the run a directory already holds: its run_identity.json, else (runs from before it existed)
    the identity keys of its unresolved .hydra/config.yaml; None for a directory that holds no run."""
    from .resolvers import run_identity

    run_dir = Path(run_dir)
    saved = read_json(run_dir / IDENTITY)
    if isinstance(saved, dict):
        return saved
    config = run_dir / HYDRA_RECORD / "config.yaml"
    if config.is_file():
        from omegaconf import OmegaConf

        try:
            return run_identity(OmegaConf.load(config))
        except Exception:  # an unreadable record vouches for nothing: treat it as another run's
            return {"unreadable": str(config)}
    return None if not any((run_dir / name).exists() for name in (RESULT, "checkpoints")) else {"unknown": str(run_dir)}


def claim_run_dir(run_dir: Path, identity: dict, run_name: str) -> None:
    """Refuse a directory that holds another configuration's run (never resume it, never skip it); record this
    run's identity where none is recorded yet. A directory named by this run's own id (``${run_id:}``, a digest of
    the same identity) from before identity files existed is this run's."""
    run_dir = Path(run_dir)
    legacy_own = not (run_dir / IDENTITY).exists() and run_dir.name == run_name
    stored = None if legacy_own else stored_identity(run_dir)
    if stored is None:
        atomic_write_json(run_dir / IDENTITY, identity)
        return
    differences = identity_differences(stored, identity)
    if differences:
        shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
        raise RunRefused(f"run dir {run_dir} holds another run ({shown}); it was neither resumed nor skipped: point "
                        "hydra.run.dir elsewhere (or leave it unset: each configuration has its own directory)")
    if not (Path(run_dir) / IDENTITY).exists():
        atomic_write_json(Path(run_dir) / IDENTITY, identity)
