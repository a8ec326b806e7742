"""What `bench.perf` times: its rows (perf's reference rows, then every registered method's ``perf_rows``), one base
model and batch to build each row's training step on, and the interleaved timing and memory of those steps.

Every row trains the same randomly initialised model on the same batch in ONE process, and the rows are timed
interleaved (round-robin, order rotated each repetition) after warm-up, so ratios hold on a noisy machine.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from methods import METHODS, build_method, swap_optimizer_params
from methods.cost import ModelShape

from .config import ENCODERS, model_config
from .model import predicted_ratio

REFERENCE_METHOD = "lora"  # every "× LoRA" ratio's reference: its row is one of perf's own reference rows
FLOOR_ROW = "floor (frozen base)"
SUITE_ROW = "lora (suite trainer loop)"
PER_LAYER_ROW = "lora (a node per layer)"  # what sharing the siblings' input products saves, in the same process
PEFT_ROW = "peft lora"
PEFT = "peft"  # the method of PEFT_ROW: peft's own LoRA, at the reference method's r, α and targets
ADAMW_WEIGHT_DECAY = 0.01  # torch's AdamW default, which every row's optimizer had before methods built their own


@dataclass
class Row:
    name: str
    method: str | None                    # None: the floor; PEFT: peft's LoRA
    kwargs: dict = field(default_factory=dict)
    progress: float = 0.5                 # where in training the step runs (e.g. inside SaLoRA's gate window)
    samples: list[float] = field(default_factory=list)
    one_time_cost: str | None = None      # the method's: "init" (apply) or "restart" (a knot), timed once
    one_time_s: float = 0.0               # OLoRA's QR init / one COLA knot / one restart
    one_time_count: float = 0.0           # how many of those an epoch holds
    trainable: int = 0
    peak_mem_bytes: int | None = None
    predicted_vs_floor: float = 1.0       # the step's arithmetic over the floor's (bench/perf/model.py)
    suite_loop: bool = False              # the suite's Trainer loop (bench/perf/loop.py) instead of the plain loop
    share_input: bool = True              # False: every adapted layer its own node (methods/fast/shared_input.py off)


def rows_for(r: int) -> list[Row]:
    """The floor, the reference method and perf's variants of it, then every registered method's rows in registry
    order (r is their rank where they have one; FFT and the virtual-token methods ignore it)."""
    rows = [Row(FLOOR_ROW, None), Row(REFERENCE_METHOD, REFERENCE_METHOD),
            Row(PER_LAYER_ROW, REFERENCE_METHOD, share_input=False), Row(SUITE_ROW, REFERENCE_METHOD, suite_loop=True),
            Row(PEFT_ROW, PEFT)]
    return rows + [Row(variant.name, name, dict(variant.kwargs), variant.progress)
                   for name, cls in METHODS.items() if name != REFERENCE_METHOD for variant in cls.perf_rows()]


def fused_adamw_works(device: torch.device, dtype: torch.dtype) -> bool:
    """torch's fused AdamW (the suite trainer's optimizer) where this device and dtype have the kernel."""
    try:
        param = torch.nn.Parameter(torch.zeros(2, device=device, dtype=dtype))
        param.grad = torch.ones_like(param)
        torch.optim.AdamW([param], fused=True).step()
        return True
    except (RuntimeError, NotImplementedError):
        return False


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Bench:
    """One base model, one batch; a `step` closure per row."""

    def __init__(self, cfg, r: int, device: torch.device, dtype: torch.dtype):
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        self.cfg, self.r, self.device, self.dtype = cfg, r, device, dtype
        config, self.targets = model_config(cfg)
        torch.manual_seed(0)
        encoder = config.model_type in ENCODERS  # a classifier on the encoder, as the papers fine-tune them
        auto = AutoModelForSequenceClassification if encoder else AutoModelForCausalLM
        self.base = auto.from_config(config, dtype=dtype).to(device)
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, config.vocab_size, (cfg.batch, cfg.seq_len), generator=g).to(device)
        self.labels = (torch.randint(0, config.num_labels, (cfg.batch,), generator=g).to(device) if encoder
                       else self.ids)
        self.shape = ModelShape.of(self.base)
        self.closers: list[Callable[[], None]] = []
        # the suite trainer's optimizer, torch's fused AdamW, where this device and dtype have the kernel
        self.optimizer_kwargs = {"fused": True} if fused_adamw_works(device, dtype) else {}
        self.memory_probe: dict[str, tuple[Callable[[], set[int]], Callable[[], int]]] = {}

    def adapter(self, name: str, **kwargs):
        """A method at this bench's r, α = 2r and targets."""
        return build_method(name, r=self.r, alpha=2 * self.r, target_modules=self.targets, **kwargs)

    def build(self, row: Row) -> Callable[[], None]:
        model = copy.deepcopy(self.base)
        ids, labels = self.ids, self.labels
        if row.method is None:  # floor: no adapter, but gradients flow back to the inputs
            model.requires_grad_(False)
            emb = model.get_input_embeddings()
            self.memory_probe[row.name] = (lambda: {p.untyped_storage().data_ptr() for p in model.parameters()}, lambda: 0)

            def step():
                embeds = emb(ids).detach().requires_grad_(True)
                model(inputs_embeds=embeds, labels=labels).loss.backward()
            return step
        if row.method == PEFT:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=self.r, lora_alpha=2 * self.r, target_modules=self.targets,
                                                     lora_dropout=0.0))
            params = [p for p in model.parameters() if p.requires_grad]
            method, arithmetic = None, self.adapter(REFERENCE_METHOD)  # peft's LoRA does the reference's arithmetic
        else:
            settings = METHODS[row.method].perf_kwargs(self.cfg.epoch_steps, self.cfg.restart_every)
            method = arithmetic = self.adapter(row.method, **{**row.kwargs, **settings})
            if not row.share_input:
                method.shared_input_siblings = ()
            row.one_time_cost = method.one_time_cost
            started = time.perf_counter()
            model = method.apply(model)
            self._sync()
            if method.one_time_cost == "init":
                row.one_time_s, row.one_time_count = time.perf_counter() - started, 1
            params = method.trainable_parameters(model)
        row.trainable = sum(p.numel() for p in params)
        row.predicted_vs_floor = predicted_ratio(arithmetic, self.shape, self.base, self.cfg.seq_len,
                                                 self.cfg.batch * self.cfg.seq_len)
        if row.suite_loop:
            from .loop import SuiteLoop

            loop = SuiteLoop(model, method, ids, labels)
            self.closers.append(loop.close)
            return loop.step
        optimizer = (method.build_optimizer(model, torch.optim.AdamW, 1e-4, ADAMW_WEIGHT_DECAY, **self.optimizer_kwargs)
                     if method is not None else torch.optim.AdamW(params, lr=1e-4, **self.optimizer_kwargs))
        model.train()
        self.memory_probe[row.name] = (
            lambda: {p.untyped_storage().data_ptr() for p in model.parameters()},
            lambda: sum(p.numel() * p.element_size() for g in optimizer.param_groups for p in g["params"])  # gradients
            + sum(t.numel() * t.element_size() for st in optimizer.state.values() for t in st.values() if torch.is_tensor(t)),
        )

        def step():
            if method is not None:
                method.before_step(model, 0, row.progress)
            loss = model(input_ids=ids, labels=labels).loss
            if method is not None:
                extra = method.regularization_loss(model, row.progress)
                if extra is not None:
                    loss = loss + extra
            loss.backward()
            if method is not None:
                method.before_optimizer_step(model, row.progress)
            optimizer.step()
            if method is not None:
                method.after_optimizer_step(model, int(row.progress * self.cfg.epoch_steps))
            optimizer.zero_grad(set_to_none=True)

        if row.one_time_cost == "restart":  # the knot's one-time cost
            step()
            self._sync()
            started = time.perf_counter()
            swap_optimizer_params(optimizer, method.tie_knot(model))
            self._sync()
            row.one_time_s = time.perf_counter() - started
            row.one_time_count = method.restarts_per_epoch(self.cfg.epoch_steps)
        return step

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def time_rows(self, rows: list[Row], steps: dict[str, Callable]) -> None:
        for row in rows:
            for _ in range(self.cfg.warmup):
                steps[row.name]()
        self._sync()
        for rep in range(self.cfg.reps):
            order = rows[rep % len(rows):] + rows[:rep % len(rows)]
            for row in order:
                started = time.perf_counter()
                own_time = steps[row.name]()  # the suite loop times its own step (bench/perf/loop.py)
                self._sync()
                row.samples.append(own_time if own_time is not None else time.perf_counter() - started)

    def gpu_memory(self, rows: list[Row], steps: dict[str, Callable]) -> None:
        for row in rows:
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            steps[row.name]()
            torch.cuda.synchronize()
            row.peak_mem_bytes = torch.cuda.max_memory_allocated() - before


def cpu_training_memory(model_params: Callable[[], set[int]], step: Callable[[], None], optimizer_state: Callable[[], int]) -> int:
    """Bytes a step holds beyond the frozen weights: tensors saved for backward (unique storages, parameters
    excluded) + gradients + optimizer state. torch's CPU allocator has no peak counter; this counts tensors."""
    saved: dict[int, int] = {}
    resident = model_params()  # read now: a knot gives the base weights new storage

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in resident:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(saved.values()) + optimizer_state()


def measure(bench: Bench, rows: list[Row]) -> None:
    """Build the rows, time them interleaved, then (if asked) each one's memory; fills each row in place."""
    steps = {row.name: bench.build(row) for row in rows}
    bench.time_rows(rows, steps)
    if bench.cfg.memory:
        if bench.device.type == "cuda":
            bench.gpu_memory(rows, steps)
        else:
            for row in rows:
                if row.name not in bench.memory_probe:
                    continue  # the suite loop's Trainer owns its step: out of reach of the saved-tensor count
                param_storages, optimizer_bytes = bench.memory_probe[row.name]
                row.peak_mem_bytes = cpu_training_memory(param_storages, steps[row.name], optimizer_bytes)
    for close in bench.closers:
        close()
