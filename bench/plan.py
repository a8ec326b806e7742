"""`python -m bench.plan experiment=<name> scale=paper [overrides]`: what each job of a sweep needs on a GPU, from its
composed config and its model's config alone (no weights, no data, no GPU).

    python -m bench.plan experiment=mora_table1_tulu_fft scale=paper     # one experiment's jobs
    python -m bench.plan --paper mora                                    # every paper-scale experiment of a paper
    python -m bench.plan --paper mora --gpu-gb 40 --tflops 312 --mfu 0.4 # another device

Per job: parameters (the model built on torch's meta device with the method applied: exact counts), weights,
gradients, optimizer states, activations with and without gradient checkpointing, the logits' workspace, the peak
per device as configured (``trainer.gradient_checkpointing``, ``devices`` and ``trainer.fsdp``), whether it fits
``--gpu-gb``, the fewest devices it needs, and the GPU-hours its training tokens cost at ``--mfu`` of ``--tflops``.

Activations are saved-for-backward bytes per token and layer, per architecture family, written out below from the
tensors transformers 5's layers keep (tests/test_plan.py holds the estimate to the peak measured by torch-level
accounting on miniature runs, within ``TOLERANCE``). Not counted: evaluation (its batches are smaller than training's
and run without gradients), the CUDA context (~0.5-1 GB) and allocator fragmentation; the default ``--gpu-gb`` leaves
that headroom by planning for 76 of an 80 GB device.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .errors import UserError, report_and_exit

GB = 1024 ** 3
TOLERANCE = 0.30   # the estimate vs the measured peak of miniature runs (tests/test_plan.py; bottleneck adapters: an
                   # over-estimate by up to 70%, as their frozen layers keep less than the families below count)
USABLE_GB = 76.0   # of an 80 GB device: the CUDA context and fragmentation take the rest
DEFAULT_TFLOPS, DEFAULT_MFU = 312.0, 0.40   # A100 bf16 dense peak; a typical model-FLOPs utilisation for 1-7B training
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Family:
    """Bytes one layer saves for backward per token, by the width they scale with: hidden (h), FFN (i) and, for eager
    attention, heads × sequence. ``dtype_bytes`` is the activation dtype; layer norms upcast to fp32 whatever it is."""
    per_hidden: tuple[float, float]       # (fp32 model, bf16/fp16 model)
    per_ffn: tuple[float, float]
    per_head_position: float = 0.0        # eager attention's probabilities (+ their dropout), any dtype

    def layer_bytes(self, p: int, hidden: int, ffn: int, heads: int, seq: int) -> float:
        k = 0 if p == 4 else 1
        return self.per_hidden[k] * hidden + self.per_ffn[k] * ffn + self.per_head_position * heads * seq


# Llama-style (Llama, Mistral, Gemma): two RMSNorms (fp32 upcast of input and output), q/k/v/o and RoPE'd q, k, the
# residual, gate/up/act/product (4 i); SDPA keeps q, k, v, out and a log-sum-exp, no probabilities.
LLAMA = Family(per_hidden=(42.0, 26.0), per_ffn=(16.0, 8.0))
# OPT: two LayerNorms, q/k/v/out, two dropout masks on h; fc1's ReLU output (i) is fc2's input too.
OPT = Family(per_hidden=(38.0, 20.0), per_ffn=(4.0, 2.0))
# BERT-style encoders (RoBERTa): as OPT plus GELU's input and its dropout, and eager attention's probabilities,
# their dropout and mask (fp32 softmax: 12 bytes per head and key position).
ROBERTA = Family(per_hidden=(36.5, 27.5), per_ffn=(10.5, 3.5), per_head_position=12.0)
FAMILIES = {"llama": LLAMA, "mistral": LLAMA, "gemma": LLAMA, "opt": OPT, "roberta": ROBERTA}
LOGIT_BYTES_FP32 = 12   # per logit beyond its own dtype: the fp32 upcast, log-softmax output and its gradient


@dataclass(frozen=True)
class Memory:
    """Bytes per device."""
    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float

    @property
    def peak(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits


@dataclass
class JobPlan:
    label: str
    jobs: int
    model: str
    method: str
    params: int
    trainable: int
    layers: int
    dtype_bytes: int
    micro_batch: int
    seq_len: int
    per_layer: float          # bytes one layer saves for backward (its adapters included), per micro-batch
    layer_input: float        # what a checkpointed layer keeps instead: its input
    logits: float
    devices: int              # as configured
    sharded: bool
    checkpointing: bool
    tokens: float             # training tokens (upper bound: every sequence at seq_len)
    flops: float

    def memory(self, devices: int, sharded: bool, checkpointing: bool, master_bytes: int | None = None) -> Memory:
        """``master_bytes``: the bytes of a trained weight (4: fp32 master weights; default: the model's dtype)."""
        p, frozen = self.dtype_bytes, self.params - self.trainable
        m = master_bytes or p
        if sharded:  # FSDP full shard: weights, gradients and Adam's two moments sharded; one layer gathered in bf16
            weights = (frozen * p + self.trainable * m) / devices + 2 * self.params / max(self.layers, 1) * 2
            gradients, optimizer = self.trainable * m / devices, 2 * self.trainable * m / devices
        else:        # one device or DDP (replicated)
            weights, gradients, optimizer = frozen * p + self.trainable * m, self.trainable * m, 2 * self.trainable * m
        if checkpointing:  # the layers' inputs, then either the logits' workspace or one layer being recomputed
            inputs = self.layers * self.layer_input
            acts, logits = inputs + max(self.per_layer - self.logits, 0.0), self.logits
        else:              # every layer's saved tensors, and the logits' workspace on top at the start of backward
            acts, logits = self.activations, self.logits
        return Memory(weights, gradients, optimizer, acts, logits)

    @property
    def activations(self) -> float:
        return self.layers * self.per_layer

    @property
    def activations_ckpt(self) -> float:
        return self.memory(self.devices, self.sharded, True).activations

    @property
    def configured(self) -> Memory:
        return self.memory(self.devices, self.sharded, self.checkpointing)

    @property
    def full_training(self) -> bool:
        """Most weights train (FFT, pretraining from scratch): they get fp32 master weights, so only sharding fits."""
        return self.trainable > self.params / 2

    @property
    def pure_low_precision(self) -> bool:
        """Full training with bf16/fp16 weights and Adam states: at FFT learning rates most bf16 updates round away."""
        return self.full_training and self.dtype_bytes < 4

    def devices_needed(self, usable: float) -> str:
        """The least that makes the job fit: as configured (full training only with fp32 master weights); else
        gradient checkpointing on one device; else FSDP full shard with checkpointing on the fewest devices."""
        master = 4 if self.full_training else None
        if self.configured.peak <= usable and not self.pure_low_precision:
            return "as configured"
        if self.memory(1, False, True, master).peak <= usable:
            return "1 + checkpointing" + (" + fp32 master (model.dtype=float32)" if self.pure_low_precision else "")
        for n in (2, 4, 8, 16, 32, 64):
            if self.memory(n, True, True, master).peak <= usable:
                return f"{n} FSDP + checkpointing" + (" + fp32 master" if self.pure_low_precision else "")
        return "more than 64"

    def gpu_hours(self, tflops: float, mfu: float) -> float:
        return self.flops / (tflops * 1e12 * mfu) / 3600


# ----------------------------------------------------------------------------------------------- the model's config
def model_config(model_cfg: DictConfig):
    """The model's transformers config without its weights: the conf file's ``config`` (random init) or ``shape``
    (a hub model's config.json, written there so planning needs no hub access), else the local directory's."""
    from transformers import AutoConfig

    node = OmegaConf.to_container(model_cfg, resolve=True)
    if node.get("config"):
        return AutoConfig.for_model(**node["config"])
    if node.get("shape"):
        return AutoConfig.for_model(node["model_type"], **node["shape"])
    path = Path(str(node.get("path")))
    if path.is_dir():
        return AutoConfig.from_pretrained(path)
    raise UserError(f"model={node.get('name')}: no shape to plan from (no `shape:` in conf/model/{node.get('name')}.yaml and "
                    f"{path} is not a local directory); valid: add its config.json's sizes as `shape:`")


def family_of(config) -> Family:
    if config.model_type not in FAMILIES:
        raise UserError(f"plan: model_type={config.model_type!r} has no activation model; valid: {sorted(FAMILIES)}")
    return FAMILIES[config.model_type]


def sizes(config) -> tuple[int, int, int, int, int]:
    hidden = config.hidden_size
    ffn = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim")
    return hidden, ffn, config.num_hidden_layers, config.num_attention_heads, config.vocab_size


@lru_cache(maxsize=64)
def _counted(config_json: str, head: str, num_labels: int | None, method_json: str) -> tuple[int, int, list]:
    """(parameters, trainable, adapted linears as (in, out)) of the model with the method applied, built on the meta
    device: exact counts at no memory cost."""
    import json

    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from methods import build_method

    config = AutoConfig.for_model(**json.loads(config_json))
    if head == "seq_cls" and num_labels:
        config.num_labels = num_labels
    auto = AutoModelForSequenceClassification if head == "seq_cls" else AutoModelForCausalLM
    kwargs = json.loads(method_json)
    name = kwargs.pop("name")
    with torch.device("meta"):
        model = auto.from_config(config)
    model = build_method(name, **kwargs).apply(model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapted = [(m.base_layer.in_features, m.base_layer.out_features) for m in model.modules()
               if isinstance(getattr(m, "base_layer", None), torch.nn.Linear)]
    return total, trainable, adapted


def count_parameters(config, head: str, num_labels: int | None, method_cfg: dict) -> tuple[int, int, list]:
    import json

    kwargs = {k: v for k, v in method_cfg.items() if not str(k).startswith("_")}
    return _counted(config.to_json_string(use_diff=False), head, num_labels, json.dumps(kwargs, sort_keys=True))


# ----------------------------------------------------------------------------------------------- one job
def adapter_bytes_per_token(method_cfg: dict, adapted: list, p: int) -> float:
    """What the adapted linear layers keep beyond their frozen layers, per token: each method's own
    (AdapterMethod.activation_bytes)."""
    from methods import build_method

    kwargs = {k: v for k, v in method_cfg.items() if not str(k).startswith("_")}
    method = build_method(kwargs.pop("name"), **kwargs)
    return sum(method.activation_bytes(fan_in, fan_out, p) for fan_in, fan_out in adapted)


def training_tokens(cfg: DictConfig, global_batch: int, seq: int) -> float:
    from .tasks import get_spec
    from .tasks.hub_pins import train_rows

    steps = int(cfg.trainer.get("max_steps") or -1)
    if steps <= 0:
        spec = get_spec(cfg.task.name)
        rows = cfg.task.get("num_train") or cfg.task.get("limit_train") or train_rows(spec.hub_dataset, spec.hub_config)
        if not rows:
            raise UserError(f"plan: task={cfg.task.name} sets neither trainer.max_steps nor a train size (task.num_train, "
                            "or its dataset's row count in bench/tasks/hub_pins.py)")
        steps = math.ceil(float(cfg.trainer.num_train_epochs) * rows / global_batch)
    return float(steps) * global_batch * seq


def plan_job(cfg: DictConfig, label: str = "", jobs: int = 1) -> JobPlan:
    from .tasks import get_spec

    spec = get_spec(cfg.task.name)
    head = "seq_cls" if spec.kind == "cls" else "causal_lm"
    config = model_config(cfg.model)
    family = family_of(config)
    hidden, ffn, layers, heads, vocab = sizes(config)
    method_cfg = OmegaConf.to_container(cfg.method, resolve=True)
    total, trainable, adapted = count_parameters(config, head, spec.num_labels, method_cfg)
    p = BYTES[str(cfg.model.dtype)]
    b, seq = int(cfg.trainer.per_device_train_batch_size), int(cfg.task.max_length)
    devices = int(cfg.get("devices") or 1)
    sharded = bool(str(cfg.trainer.get("fsdp") or "").strip())
    checkpointing = bool(cfg.trainer.get("gradient_checkpointing")
                         or (cfg.trainer.get("fsdp_config") or {}).get("activation_checkpointing"))
    tokens_micro = b * seq

    adapters = adapter_bytes_per_token(method_cfg, adapted, p) * tokens_micro
    per_layer = family.layer_bytes(p, hidden, ffn, heads, seq) * tokens_micro + adapters / max(layers, 1)
    if not adapted and trainable < total / 2:  # frozen linears nobody adapts keep no input for a weight gradient
        per_layer -= (3 * hidden + ffn) * p * tokens_micro
    logits = tokens_micro * vocab * (p + LOGIT_BYTES_FP32) if head == "causal_lm" else 0.0

    # The configs state one device's batch × accumulation, the papers' global batch; on W devices the run divides the
    # accumulation (bench/distributed.py), so the global batch and the step count stay the configured ones.
    global_batch = b * int(cfg.trainer.gradient_accumulation_steps)
    tokens = training_tokens(cfg, global_batch, seq)
    attention = 4 * seq * hidden * layers           # QKᵀ and AV, forward, per token
    forward = 2 * total + attention
    per_token = forward * (3 if checkpointing else 2) + 2 * trainable + attention
    return JobPlan(label or cfg.task.name, jobs, cfg.model.name, cfg.method.name, total, trainable, layers, p, b, seq,
                   per_layer, p * hidden * tokens_micro, logits, devices, sharded, checkpointing, tokens,
                   tokens * per_token)


# ----------------------------------------------------------------------------------------------- sweeps
def composed_jobs(experiment: str, overrides: list[str]) -> list[DictConfig]:
    """Every job of the sweep, composed: each combination of config groups (model=, method=, task=) is composed once
    and the plain values (seed=, method.r=, learning rates) are set on copies, as Hydra's override would set them:
    seconds for a 1,400-job sweep instead of minutes."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .sweep.sweeps import _compose

    head = [f"experiment={experiment}", *overrides]
    params = OmegaConf.to_container(_compose(head, hydra_config=True).hydra.sweeper.params or {})
    given = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items() if k not in given])
    is_group = [("." not in o.key_or_group and o.key_or_group != "seed") for o in parsed]
    # Group options as the strings Hydra composes; plain values typed as Hydra's grammar types them.
    group_axes = [[(o.key_or_group, v) for v in (o.sweep_string_iterator() if o.is_sweep_override() else [o.value()])]
                  for o, g in zip(parsed, is_group) if g]
    value_axes = [[(o.key_or_group, v) for v in (o.sweep_iterator() if o.is_sweep_override() else [o.value()])]
                  for o, g in zip(parsed, is_group) if not g]
    jobs = []
    for group_job in itertools.product(*group_axes):
        composed = _compose([*head, *(f"{k}={v}" for k, v in group_job)])
        for value_job in itertools.product(*value_axes):
            cfg = composed.copy()
            for key, value in value_job:
                OmegaConf.update(cfg, key, value, merge=False)
            jobs.append(cfg)
    return jobs


def plan_experiment(experiment: str, overrides: list[str]) -> list[JobPlan]:
    """One plan per distinct job shape of the sweep (jobs that differ only in seed or learning rate share one)."""
    groups: dict[tuple, tuple[DictConfig, int]] = {}
    for cfg in composed_jobs(experiment, overrides):
        key = (OmegaConf.to_yaml(cfg.model), OmegaConf.to_yaml(cfg.method), cfg.task.name, cfg.task.max_length,
               cfg.trainer.get("per_device_train_batch_size"), cfg.trainer.get("max_steps"),
               cfg.get("devices"), cfg.trainer.get("fsdp"), cfg.trainer.get("gradient_checkpointing"))
        first, count = groups.get(key, (cfg, 0))
        groups[key] = (first, count + 1)
    out = []
    for cfg, count in groups.values():
        r = "" if cfg.method.name == "fft" else f" r {cfg.method.r}"
        out.append(plan_job(cfg, f"{experiment}: {cfg.model.name} {cfg.method.name}{r} {cfg.task.name}", count))
    return out


def render(plans: list[JobPlan], usable: float, tflops: float, mfu: float) -> str:
    lines = [f"| job (× count) | params / trainable | batch × seq | devices | ckpt | weights | grads | optim | "
             f"activations (ckpt) | logits | peak/device | fits {usable:.0f} GB | needs | GPU-h each |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    total_hours = 0.0
    for plan in plans:
        hours = plan.gpu_hours(tflops, mfu)
        total_hours += hours * plan.jobs
        memory, needed = plan.configured, plan.devices_needed(usable * GB)
        lines.append(
            f"| {plan.label} (× {plan.jobs}) | {plan.params / 1e9:.2f}B / {_count(plan.trainable)} | "
            f"{plan.micro_batch} × {plan.seq_len} | {plan.devices}{' FSDP' if plan.sharded else ''} | "
            f"{'on' if plan.checkpointing else 'off'} | {_gb(memory.weights)} | {_gb(memory.gradients)} | "
            f"{_gb(memory.optimizer)} | {_gb(plan.activations)} ({_gb(plan.activations_ckpt)}) | {_gb(memory.logits)} | "
            f"{_gb(memory.peak)} | {'yes' if needed == 'as configured' else '**no**'} | {needed} | {hours:.1f} |")
    lines.append(f"\n{sum(p.jobs for p in plans)} jobs, {total_hours:,.0f} GPU-hours of training at {mfu:.0%} of "
                 f"{tflops:.0f} TFLOP/s (evaluation not included).")
    return "\n".join(lines)


def _gb(value: float) -> str:
    return f"{value / GB:.1f}"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def study_plans(name: str) -> list[JobPlan]:
    """Every paper-scale job of a paper (or of the comparison), planned."""
    from .papers import load

    return [plan for exp, fixed in load(name, kind=None).plan("paper")
            for plan in plan_experiment(exp, ["scale=paper", *fixed])]


def main(argv: list[str] | None = None) -> None:
    from .cli_args import one_line_parser
    from .papers import names

    parser = one_line_parser("python -m bench.plan", __doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="experiment=<name> and any other Hydra overrides (scale=paper)")
    parser.add_argument("--paper", choices=names(None), help="every paper-scale experiment of this paper (or compare)")
    parser.add_argument("--gpu-gb", type=float, default=USABLE_GB, help=f"usable memory per device (default {USABLE_GB})")
    parser.add_argument("--tflops", type=float, default=DEFAULT_TFLOPS, help="the device's bf16 peak, TFLOP/s")
    parser.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="model-FLOPs utilisation, a fraction")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.paper:
            plans = study_plans(args.paper)
        else:
            experiments = [o.split("=", 1)[1] for o in args.overrides if o.startswith("experiment=")]
            if len(experiments) != 1:
                raise UserError("plan: name one experiment=<name> (or --paper PAPER); valid: a conf/experiment name")
            rest = [o for o in args.overrides if not o.startswith("experiment=")]
            plans = plan_experiment(experiments[0], rest)
        print(render(plans, args.gpu_gb, args.tflops, args.mfu))
    except UserError as err:
        report_and_exit(err)


if __name__ == "__main__":
    main()
