"""`python -m bench.train [overrides]` (console script `lorabench-train`): one run, or a sweep with -m.

    python -m bench.train method=olora model=stories260k task=uuid scale=tiny
    python -m bench.train -m method=lora,olora,cola,salora,mora method.r=4,8 seed=1,2
    python -m bench.train -m ... hydra/launcher=slurm
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import resolvers  # noqa: F401  (registers ${run_id:})
from .errors import DiskFull, UserError, report_and_exit
from .records import ERROR, RunRefused, atomic_write_json, read_json, write_error


@hydra.main(version_base="1.3", config_path="conf", config_name="train")  # bench/conf: conf/ in a checkout
def hydra_entry(cfg: DictConfig):
    from .run.execute import execute  # heavy imports after Hydra has parsed the command line

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        return execute(cfg, run_dir, experiment=hydra_cfg.runtime.choices.get("experiment"))
    except UserError as err:
        if isinstance(err, RunRefused):  # not this command's directory: write nothing in it
            if sweeping:
                note_refusal(run_dir, err)
        elif not isinstance(err, DiskFull):  # with no space left, error.json could only be half-written
            write_error(run_dir, err, step=None)
        if not sweeping:
            report_and_exit(err)
        print(f"FAILED {run_dir}: {err}", file=sys.stderr)
    except Exception as err:  # a bug or a runtime failure (NaN, OOM): recorded; siblings in a sweep go on
        write_error(run_dir, err, step=getattr(err, "step", None))
        if not sweeping or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"FAILED {run_dir}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
    return None


REFUSED = ".refused"  # a sweep's jobs refused a run dir (in use, or another run's): noted here, not in the run dir


def note_refusal(run_dir: Path, err: UserError) -> None:
    atomic_write_json(run_dir.parent / REFUSED / f"{run_dir.name}-{os.getpid()}.json",
                      {"run": run_dir.name, "message": str(err), "time": time.time()})


def failed_since(runs_dir: Path, started: float) -> list[Path]:
    """Run dirs under ``runs_dir`` whose error.json was written, or that were refused, by this invocation."""
    failed = {p.parent for p in runs_dir.glob(f"*/{ERROR}") if p.stat().st_mtime >= started}
    failed |= {runs_dir / (read_json(p) or {}).get("run", p.stem) for p in runs_dir.glob(f"{REFUSED}/*.json")
               if p.stat().st_mtime >= started}
    return sorted(failed)


def keep_sweep_record(runs_dir: Path, started: float) -> None:
    """Hydra writes every sweep's multirun.yaml to the same place in runs_dir; keep a dated copy of each."""
    record = runs_dir / "multirun.yaml"
    if record.is_file() and record.stat().st_mtime >= started:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
        kept = runs_dir / "sweeps" / f"multirun-{stamp}-{os.getpid()}.yaml"
        kept.parent.mkdir(exist_ok=True)
        shutil.copy2(record, kept)


def main() -> None:
    started = time.time()
    runs_dir = None
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        from .cli import preflight

        try:
            runs_dir = preflight(sys.argv[1:])
        except UserError as err:
            report_and_exit(err)
    try:
        hydra_entry()
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; the same command resumes the others from their last checkpoint",
              file=sys.stderr)
        sys.exit(130)
    multirun = any(a in ("-m", "--multirun") for a in sys.argv[1:])
    if multirun and runs_dir is not None:
        keep_sweep_record(runs_dir, started)
    failed = failed_since(runs_dir, started) if multirun and runs_dir is not None and runs_dir.is_dir() else []
    if failed:  # the siblings ran to the end; the sweep as a whole did not succeed
        print(f"sweep: {len(failed)} job(s) failed, see error.json in: {', '.join(p.name for p in failed)}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
