"""`python -m bench.perf [key=value ...]` (`make perf`): what each method costs per training step and in memory.

Every row trains the same randomly initialised model on the same batch in ONE process, and the rows are
timed interleaved (round-robin, order rotated each repetition) after warm-up, so ratios hold on a noisy
machine. Rows: the frozen-base floor (forward + backward to the inputs), our LoRA, peft LoRA (same r, α,
targets), OLoRA (+ its one-time QR), COLA (+ knot cost amortised), SaLoRA inside/outside its gating window,
MoRA per operator, ReLoRA/ReMoRA (+ restart cost amortised), and the papers' baselines (FFT, DoRA, LoRA+,
AsyLoRA, AdaLoRA, prefix and prompt tuning, Houlsby and Pfeiffer adapters). Memory: CUDA max-allocated on GPU; on CPU the
bytes a step holds beyond the frozen weights (tensors saved for backward + gradients + optimizer state):
torch's CPU allocator has no peak counter and is invisible to tracemalloc.

Output: results/perf.md and results/perf.json. Timings are measured and reported, never asserted in tests.
"""

from __future__ import annotations

import copy
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import OmegaConf

from methods import build_method, swap_optimizer_params

from .errors import UserError, report_and_exit
from .perf_model import ModelShape, predicted_ratio
from .records import atomic_write_json, atomic_write_text, require_writable_dir, versions
from .validate import is_int

DEFAULTS = OmegaConf.create({
    "model": "perf_llama",          # perf_llama (built in) or any conf/model name (random weights of its shape)
    "batch": 4, "seq_len": 128, "ranks": [8, 64], "reps": 40, "warmup": 3,  # 40: medians within ~1% where goals sit
    "device": "auto", "dtype": "float32", "epoch_steps": 1000, "restart_every": 100,
    "targets": None,                # default: the model config's target_modules
    "memory": True, "out_dir": "results", "quick": False,
})
PERF_LLAMA = {"model_type": "llama", "vocab_size": 2048, "hidden_size": 384, "intermediate_size": 1024,
              "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8, "max_position_embeddings": 512}
QUICK = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
         "num_key_value_heads": 4, "vocab_size": 256}
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MORA_TYPES = ("truncation", "sharing", "decoupling", "rotation")
FLOOR_ROW = "floor (frozen base)"
SUITE_ROW = "lora (suite trainer loop)"
PER_LAYER_ROW = "lora (a node per layer)"  # what sharing the siblings' input products saves, in the same process
ENCODERS = ("roberta", "bert")
ADAMW_WEIGHT_DECAY = 0.01  # torch's AdamW default, which every row's optimizer had before methods built their own


@dataclass
class Row:
    name: str
    method: str | None                    # None: the floor; "peft": peft's LoRA
    kwargs: dict = field(default_factory=dict)
    progress: float = 0.5                 # SaLoRA's gating window position
    samples: list[float] = field(default_factory=list)
    one_time_s: float = 0.0               # OLoRA's QR init / one COLA knot / one restart
    one_time_count: float = 0.0           # how many of those an epoch holds
    trainable: int = 0
    peak_mem_bytes: int | None = None
    predicted_vs_floor: float = 1.0       # the step's arithmetic over the floor's (bench/perf_model.py)
    suite_loop: bool = False              # the suite's Trainer loop (bench/perf_loop.py) instead of the plain loop
    share_input: bool = True              # False: every adapted layer its own node (methods/fast/shared_input.py off)


def rows_for(r: int) -> list[Row]:
    rows = [Row(FLOOR_ROW, None), Row("lora", "lora"), Row(PER_LAYER_ROW, "lora", share_input=False),
            Row(SUITE_ROW, "lora", suite_loop=True),
            Row("peft lora", "peft"), Row("olora", "olora"),
            Row("cola (2 links)", "cola", {"knots": [0.5]}),
            Row("salora (in window)", "salora", progress=0.25), Row("salora (outside window)", "salora", progress=0.9)]
    rows += [Row(f"mora ({t})", "mora", {"mora_type": t}) for t in MORA_TYPES]
    rows += [Row("relora", "relora"), Row("remora", "remora", {"mora_type": "sharing"})]
    # the papers' baselines (r is their rank where they have one; FFT and the virtual-token methods ignore it)
    rows += [Row(name, name) for name in ("fft", "dora", "loraplus", "asylora")]
    rows += [Row("adalora (in window)", "adalora", progress=0.25)]  # its allocator prunes between 0.1 and 0.4
    rows += [Row(name, name) for name in ("prefix", "prompt", "adapter_h", "adapter_p")]
    return rows


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


def model_config(cfg) -> tuple[Any, list[str]]:
    from transformers import AutoConfig

    if cfg.model == "perf_llama":
        spec = {**PERF_LLAMA, **(QUICK if cfg.quick else {})}
        return AutoConfig.for_model(**spec), list(cfg.targets or LLAMA_TARGETS)
    from . import resolvers  # noqa: F401  (${cwd:} in the paths the model file reads)

    from .paths import CONF_DIR as conf_root
    # A model file reads ${paths.shared_data}: give it the paths group, as a composed run would.
    tree = OmegaConf.merge({"paths": OmegaConf.load(conf_root / "paths" / "default.yaml")},
                           {"model": OmegaConf.load(conf_root / "model" / f"{cfg.model}.yaml")})
    model_cfg = tree.model
    targets = cfg.targets or model_cfg.target_modules
    targets = targets if isinstance(targets, str) else list(targets)  # a regex stays one string (peft's rule)
    if model_cfg.source == "config":
        return AutoConfig.for_model(**OmegaConf.to_container(model_cfg.config)), targets
    if model_cfg.get("shape"):  # a hub model's shape written in its conf file: no download
        return AutoConfig.for_model(model_cfg.model_type, **OmegaConf.to_container(model_cfg.shape)), targets
    return AutoConfig.from_pretrained(model_cfg.path), targets  # the shape only; weights stay random


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
        if row.method == "peft":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=self.r, lora_alpha=2 * self.r, target_modules=self.targets,
                                                     lora_dropout=0.0))
            params = [p for p in model.parameters() if p.requires_grad]
            method = None
        else:
            kwargs = dict(row.kwargs)
            if row.method in ("relora", "remora"):
                kwargs["restart_every"] = self.cfg.restart_every
            if row.method == "adalora":
                kwargs["total_step"] = self.cfg.epoch_steps
            method = build_method(row.method, r=self.r, alpha=2 * self.r, target_modules=self.targets, **kwargs)
            if not row.share_input:
                method.shared_input_siblings = ()
            started = time.perf_counter()
            model = method.apply(model)
            self._sync()
            if row.method == "olora":
                row.one_time_s, row.one_time_count = time.perf_counter() - started, 1
            params = method.trainable_parameters(model)
        row.trainable = sum(p.numel() for p in params)
        row.predicted_vs_floor = self.predict(row, method)
        if row.suite_loop:
            from .perf_loop import SuiteLoop

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
            if method is not None and hasattr(method, "lagrangian_step"):
                method.lagrangian_step(model, row.progress)
            optimizer.step()
            if method is not None:
                method.after_optimizer_step(model, int(row.progress * self.cfg.epoch_steps))
            optimizer.zero_grad(set_to_none=True)

        if method is not None and hasattr(method, "tie_knot"):  # the knot's one-time cost
            step()
            self._sync()
            started = time.perf_counter()
            swap_optimizer_params(optimizer, method.tie_knot(model))
            self._sync()
            row.one_time_s = time.perf_counter() - started
            row.one_time_count = len(row.kwargs.get("knots", [])) or self.cfg.epoch_steps / self.cfg.restart_every
        return step

    def predict(self, row: Row, method) -> float:
        """The row's arithmetic over the floor's, from the base model's shapes and the row's hyperparameters."""
        kwargs = {"r": self.r, "targets": self.shape.targets(self.targets)}
        if row.method in ("mora", "remora"):
            kwargs["mora_type"] = row.kwargs["mora_type"]
        if row.method in ("adapter_h", "adapter_p"):
            wrapped = {name for name, _ in method.target_layers(self.base)}
            kwargs.update(bottleneck=method.bottleneck, positions=[lin for lin in self.shape.linears if lin.name in wrapped])
        if row.method in ("prefix", "prompt"):
            kwargs["virtual_tokens"] = method.num_virtual_tokens
        return predicted_ratio(row.method, self.shape, self.cfg.seq_len, self.cfg.batch * self.cfg.seq_len, **kwargs)

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
                own_time = steps[row.name]()  # the suite loop times its own step (bench/perf_loop.py)
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


def median_iqr(samples: list[float]) -> tuple[float, float]:
    median = statistics.median(samples)
    if len(samples) < 2:
        return median, 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return median, q3 - q1


def amortised_extra(row: Row, cfg) -> float:
    """Seconds a step carries of the row's one-time costs (COLA's knot, ReLoRA's restarts) over an epoch; OLoRA's
    init is shown as its share of an epoch instead."""
    return row.one_time_s * row.one_time_count / cfg.epoch_steps if row.method != "olora" else 0.0


def paired_ratios(steps: list[float], reference: list[float]) -> list[float]:
    """Each repetition's ratio. One repetition runs every row back to back, so the machine's slow drift (frequency,
    other tenants) divides out of each ratio, where a ratio of two medians taken from different moments keeps it."""
    return [step / ref for step, ref in zip(steps, reference, strict=True)]


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the order statistics x_(k) and x_(n+1-k), k the binomial
    quantile, covering the median with at least ``confidence`` (n 40: the 14th and 27th values, 96.2%). Unbounded
    where n is too small for any pair to cover it."""
    from scipy import stats

    ordered = sorted(values)
    k = int(stats.binom.ppf((1 - confidence) / 2, len(ordered), 0.5))  # 1-based index of the lower end
    if k < 1 or len(ordered) + 1 - k < k:  # no pair of order statistics reaches the coverage
        return -math.inf, math.inf
    return ordered[k - 1], ordered[len(ordered) - k]


def summarise(rows: list[Row], cfg) -> list[dict]:
    by_name = {row.name: row for row in rows}
    tokens = cfg.batch * cfg.seq_len
    out = []
    for row in rows:
        median, iqr = median_iqr(row.samples)
        out.append({
            "row": row.name, "median_step_ms": 1e3 * median, "iqr_ms": 1e3 * iqr,
            "amortised_step_ms": 1e3 * (median + amortised_extra(row, cfg)), "tokens_per_s": tokens / median, "trainable_params": row.trainable,
            "peak_mem_mb": None if row.peak_mem_bytes is None else row.peak_mem_bytes / 2**20,
            "one_time_s": row.one_time_s or None,
            "one_time_share_of_epoch": (row.one_time_s / (row.one_time_s + cfg.epoch_steps * median)) if row.method == "olora" else None,
        })
    amortised = {row.name: [s + amortised_extra(row, cfg) for s in row.samples] for row in rows}
    mem = {name: by_name[name].peak_mem_bytes for name in ("lora", "peft lora")}
    for entry in out:
        steps = amortised[entry["row"]]
        for key, reference in (("vs_lora", "lora"), ("vs_peft_lora", "peft lora"), ("vs_floor", FLOOR_ROW)):
            ratios = paired_ratios(steps, amortised[reference])
            entry[key], entry[f"{key}_iqr"] = median_iqr(ratios)
            entry[f"{key}_ci"] = list(median_interval(ratios))
        entry["arithmetic_vs_floor"] = by_name[entry["row"]].predicted_vs_floor
        entry["overhead_beyond_arithmetic"] = entry["vs_floor"] / entry["arithmetic_vs_floor"]
        entry["overhead_beyond_arithmetic_ci"] = [bound / entry["arithmetic_vs_floor"] for bound in entry["vs_floor_ci"]]
        peak = by_name[entry["row"]].peak_mem_bytes
        entry["mem_vs_lora"] = peak / mem["lora"] if peak and mem["lora"] else None
        entry["mem_vs_peft_lora"] = peak / mem["peft lora"] if peak and mem["peft lora"] else None
    return out


OVERHEAD_LIMIT = 1.10  # every row: measured ratio to the floor over its arithmetic ratio
GOALS = {  # the performance issue's goals per row: (key, limit, ranks or None for every rank); shown, never asserted
    "lora": [("vs_floor", 1.15, ("8",)), ("vs_peft_lora", 0.95, ("8",)), ("vs_peft_lora", 1.00, None)],
    SUITE_ROW: [("vs_peft_lora", 1.00, None)],
    "olora": [("vs_lora", 1.02, None)], "cola (2 links)": [("vs_lora", 1.02, None)],
    "mora (sharing)": [("vs_lora", 1.00, None)], "mora (truncation)": [("vs_lora", 1.00, None)],
    "salora (in window)": [("vs_lora", 1.10, None)], "salora (outside window)": [("vs_lora", 1.02, None)],
}
GOAL_LABELS = {"vs_floor": "× floor", "vs_peft_lora": "× peft", "vs_lora": "× LoRA",
               "overhead_beyond_arithmetic": "overhead"}


VERDICTS = ("met", "missed", "unresolved")


def goal_verdict(entry: dict, key: str, limit: float) -> str:
    """met: the median ratio's 95% interval lies at or below the limit; missed: above it; unresolved: it spans the
    limit (the machine's spread over these repetitions cannot tell). Entries without an interval: the median."""
    low, high = entry.get(f"{key}_ci") or (entry[key], entry[key])
    return "met" if high <= limit else "missed" if low > limit else "unresolved"


def goals_for(entry: dict, rank: str) -> list[tuple[str, str]]:
    """(label, verdict) for each goal that applies to this row at this rank; the overhead goal applies to every row
    with arithmetic beyond the floor's."""
    goals = [(key, limit) for key, limit, ranks in GOALS.get(entry["row"], []) if ranks is None or rank in ranks]
    if entry["row"] not in (FLOOR_ROW, SUITE_ROW, PER_LAYER_ROW):  # reference rows, not goals
        goals.append(("overhead_beyond_arithmetic", OVERHEAD_LIMIT))
    return [(f"{GOAL_LABELS[key]} ≤ {limit:.2f}", goal_verdict(entry, key, limit)) for key, limit in goals]


def render(report: dict) -> str:
    h = report["header"]
    lines = [
        "# Performance: cost per training step and memory",
        "",
        f"Generated by `python -m bench.perf` ({h['when']}). Machine: {h['machine']}; device: {h['device']}; dtype: "
        f"{h['dtype']}; model: {h['model']} ({h['model_params'] / 1e6:.2f} M params), batch {h['batch']} × seq {h['seq_len']}; "
        f"{h['reps']} interleaved repetitions after {h['warmup']} warm-up steps; memory: {h['memory_method']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in h["versions"].items()) + ".",
        f"One-time costs are amortised over a {h['epoch_steps']}-step epoch (COLA: one knot per epoch for a chain of 2; "
        f"ReLoRA/ReMoRA: a restart every {h['restart_every']} steps). Ratios use the amortised step time and are paired: "
        "the median over repetitions of each repetition's ratio (a repetition runs every row back to back, so the "
        "machine's drift divides out), with the IQR of the ratio to the floor in brackets. A goal is met where the "
        "95% interval of its median ratio (order statistics over the repetitions) lies at or below the limit, missed "
        "where it lies above, unresolved where it spans the limit.",
        "",
    ]
    for r, rows in report["ranks"].items():
        lines += [f"## r = {r}", "",
                  "| row | median step ms (IQR) | amortised ms | tokens/s | × our LoRA | × peft LoRA | × floor (IQR) | "
                  "arithmetic × floor | overhead beyond arithmetic | peak mem MB | mem × LoRA | mem × peft | trainable | "
                  "goals | met |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        counts = dict.fromkeys(VERDICTS, 0)
        for e in rows:
            goals = goals_for(e, str(r))
            for _, verdict in goals:
                counts[verdict] += 1
            fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
            extra = (f" (init {e['one_time_s']:.3f} s = {100 * e['one_time_share_of_epoch']:.3f}% of an epoch)"
                     if e["one_time_share_of_epoch"] else "")
            lines.append(f"| {e['row']}{extra} | {e['median_step_ms']:.1f} ({e['iqr_ms']:.1f}) | {e['amortised_step_ms']:.1f} | "
                         f"{e['tokens_per_s']:.0f} | {e['vs_lora']:.3f} | {e['vs_peft_lora']:.3f} | {e['vs_floor']:.3f} ({e['vs_floor_iqr']:.3f}) | "
                         f"{e['arithmetic_vs_floor']:.3f} | {e['overhead_beyond_arithmetic']:.3f} | "
                         f"{fmt(e['peak_mem_mb'], 1)} | {fmt(e['mem_vs_lora'], 3)} | {fmt(e['mem_vs_peft_lora'], 3)} | "
                         f"{e['trainable_params']:,} | {'; '.join(g for g, _ in goals)} | "
                         f"{' / '.join(verdict for _, verdict in goals)} |")
        lines += ["", f"Goals at r = {r}: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
                  + f" (of {sum(counts.values())}).", ""]
    return "\n".join(lines)


def measure(bench: "Bench", rows: list[Row]) -> None:
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


def _model_names() -> list[str]:
    from .paths import CONF_DIR

    conf_dir = CONF_DIR / "model"
    return ["perf_llama", *sorted(p.stem for p in conf_dir.glob("*.yaml"))]


def parse_args(argv: list[str]):
    """key=value arguments against DEFAULTS, every value typed and ranged: a UserError names the first bad one."""
    args = [a.removeprefix("perf.") for a in argv]
    for arg in args:
        key = arg.split("=", 1)[0]
        if "=" not in arg:
            raise UserError(f"{arg!r} is not key=value; valid keys: {', '.join(DEFAULTS)} (e.g. quick=true)")
        if key not in DEFAULTS:
            raise UserError(f"perf.{key} is not a perf setting; valid: {', '.join(DEFAULTS)}")
    try:
        cfg = OmegaConf.merge(DEFAULTS, OmegaConf.from_dotlist(args))
    except Exception as err:  # an unparsable value, e.g. ranks=[8
        raise UserError(f"perf: {str(err).splitlines()[0]}; valid: key=value with values like the defaults'") from err

    def bad(key: str, valid: str):
        raise UserError(f"perf.{key}={cfg[key]!r} is not valid; valid: {valid}")

    if cfg.model not in _model_names():
        bad("model", ", ".join(_model_names()))
    for key in ("batch", "seq_len", "reps", "epoch_steps", "restart_every"):
        if not is_int(cfg[key]) or cfg[key] < 1:
            bad(key, "an integer >= 1")
    if not is_int(cfg.warmup) or cfg.warmup < 0:
        bad("warmup", "an integer >= 0")
    ranks = cfg.ranks if OmegaConf.is_list(cfg.ranks) else [cfg.ranks]
    if not ranks or any(not is_int(r) or r < 1 for r in ranks):
        bad("ranks", "a list of integers >= 1, e.g. [8,64]")
    if cfg.dtype not in ("float32", "bfloat16", "float16"):
        bad("dtype", "float32, bfloat16, float16")
    if cfg.device not in ("auto", "cpu") and not str(cfg.device).startswith("cuda"):
        bad("device", "auto, cpu, cuda, cuda:N")
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        bad("device", "auto or cpu (no CUDA device here)")
    for key in ("memory", "quick"):
        if not isinstance(cfg[key], bool):
            bad(key, "true or false")
    require_writable_dir(Path(cfg.out_dir), "perf.out_dir")  # before minutes of benchmarking, not after
    return cfg


def write_outputs(out: Path, stem: str, report: dict, markdown: str) -> Path:
    """<stem>.json (the numbers) and <stem>.md (the page), atomically; returns the page's path."""
    atomic_write_json(out / f"{stem}.json", report)
    atomic_write_text(out / f"{stem}.md", markdown)
    return out / f"{stem}.md"


def main(argv: list[str] | None = None) -> dict:
    try:
        cfg = parse_args(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        report_and_exit(err)
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, {"reps": min(cfg.reps, 3), "warmup": 1, "batch": 2, "seq_len": 16, "ranks": [2, 4]})
    report = run(cfg)
    print(f"perf: {write_outputs(Path(cfg.out_dir), 'perf', report, render(report))}")
    return report


if __name__ == "__main__":
    main()
