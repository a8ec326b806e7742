"""`python -m bench.perf [key=value ...]` (`make perf`): what each method costs per training step and in memory.

Every row trains the same randomly initialised model on the same batch in ONE process, and the rows are
timed interleaved (round-robin, order rotated each repetition) after warm-up, so ratios hold on a noisy
machine. Rows: the frozen-base floor (forward + backward to the inputs), our LoRA, peft LoRA (same r, α,
targets), then every registered method's own rows (``perf_rows``): OLoRA (+ its one-time QR), COLA (+ knot cost
amortised), SaLoRA inside/outside its gating window, MoRA per operator, ReLoRA/ReMoRA (+ restart cost amortised),
and the papers' baselines (FFT, DoRA, LoRA+, AsyLoRA, AdaLoRA, prefix and prompt tuning, Houlsby and Pfeiffer
adapters). Memory: CUDA max-allocated on GPU; on CPU the bytes a step holds beyond the frozen weights (tensors
saved for backward + gradients + optimizer state): torch's CPU allocator has no peak counter and is invisible to
tracemalloc.

Output: results/perf.md and results/perf.json. Timings are measured and reported, never asserted in tests.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from ..errors import UserError, report_and_exit
from ..records import versions
from .bench import Bench, measure, pick_device, rows_for
from .config import QUICK_RUN, parse_args
from .summary import render, summarise, write_outputs


def run(cfg) -> dict:
    device = pick_device(cfg.device)
    dtype = getattr(torch, cfg.dtype)
    report: dict[str, Any] = {"ranks": {}}
    model_params = 0
    for r in cfg.ranks:
        bench = Bench(cfg, r, device, dtype)
        model_params = sum(p.numel() for p in bench.base.parameters())
        rows = rows_for(r)
        measure(bench, rows)
        report["ranks"][str(r)] = summarise(rows, cfg)
        del bench
    report["header"] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, {platform.processor() or platform.system()}",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "dtype": cfg.dtype,
        "model": cfg.model + (" (quick)" if cfg.quick else ""), "model_params": model_params, "batch": cfg.batch,
        "seq_len": cfg.seq_len, "reps": cfg.reps, "warmup": cfg.warmup, "epoch_steps": cfg.epoch_steps,
        "restart_every": cfg.restart_every, "versions": versions(),
        "memory_method": ("CUDA max_memory_allocated growth over one step" if device.type == "cuda"
                          else "bytes held beyond the frozen weights: tensors saved for backward + gradients + optimizer state"
                          if cfg.memory else "not measured"),
    }
    return report


def main(argv: list[str] | None = None) -> dict:
    try:
        cfg = parse_args(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        report_and_exit(err)
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, {"reps": min(cfg.reps, 3), **QUICK_RUN})
    report = run(cfg)
    print(f"perf: {write_outputs(Path(cfg.out_dir), 'perf', report, render(report))}")
    return report


if __name__ == "__main__":
    main()
