"""bench.plan: the memory estimate is held to the peak that torch-level accounting measures on miniature runs (CPU),
parameters are counted exactly, and every paper-scale job fits a device as its experiment configures it."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench.plan import TOLERANCE, USABLE_GB, GB, plan_job
from tests.bench_helpers import compose_cfg


class PeakMemory(TorchDispatchMode):
    """Bytes of the tensor storages created inside the block and still alive, and their peak: every op's outputs are
    counted once per storage and released when the storage is freed (the oracle: it knows no formula)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                if storage._cdata not in self.live:
                    self.live[storage._cdata] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, storage._cdata)
        return out


def measured_peak(cfg) -> int:
    """One forward + backward of the composed run's model and method on random tokens of the planned shape."""
    from omegaconf import OmegaConf

    from bench.run.models import load_model, load_tokenizer
    from bench.tasks import get_spec
    from methods import build_method

    spec = get_spec(cfg.task.name)
    head = "seq_cls" if spec.kind == "cls" else "causal_lm"
    torch.manual_seed(0)
    model = load_model(cfg.model, head, spec.num_labels, load_tokenizer(cfg.model))
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.method, resolve=True).items() if not k.startswith("_")}
    model = build_method(kwargs.pop("name"), **kwargs).apply(model)
    if cfg.trainer.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    b, s = cfg.trainer.per_device_train_batch_size, cfg.task.max_length
    ids = torch.randint(3, model.config.vocab_size, (b, s))
    labels = torch.zeros(b, dtype=torch.long) if head == "seq_cls" else ids
    tracker = PeakMemory()
    with tracker:
        model(input_ids=ids, labels=labels).loss.backward()
    return tracker.peak


CASES = [  # (model, task, method, extra overrides)
    ("tiny_llama", "uuid", "fft", []), ("tiny_llama", "uuid", "lora", []), ("tiny_llama", "uuid", "mora", []),
    ("tiny_llama", "uuid", "mora_rotation", ["method.dropout=0"]), ("tiny_llama", "uuid", "dora", ["method.dropout=0"]),
    ("tiny_llama", "uuid", "adalora", []), ("tiny_llama", "uuid", "prefix", []),
    ("tiny_llama", "uuid", "lora", ["model.dtype=bfloat16"]), ("tiny_llama", "uuid", "fft", ["model.dtype=bfloat16"]),
    ("tiny_llama", "uuid", "lora", ["+trainer.gradient_checkpointing=true"]),
    ("tiny_llama", "uuid", "fft", ["+trainer.gradient_checkpointing=true"]),
    ("tiny_llama", "uuid", "dora", []), ("tiny_llama", "uuid", "salora", []), ("tiny_llama", "uuid", "cola", []),
    ("tiny_opt", "uuid", "lora", []), ("tiny_opt", "uuid", "fft", ["model.dtype=bfloat16"]),
    ("tiny_roberta", "sst2", "lora", []), ("tiny_roberta", "sst2", "fft", []),
]


@pytest.mark.parametrize("model, task, method, extra", CASES)
def test_the_estimate_is_within_tolerance_of_the_measured_peak(model, task, method, extra, tmp_path):
    cfg = compose_cfg([f"model={model}", f"task={task}", f"method={method}", "trainer.per_device_train_batch_size=4",
                       "task.max_length=96", "method.r=8", *extra], tmp_path)
    plan = plan_job(cfg)
    memory = plan.configured
    estimate = memory.activations + memory.logits + plan.trainable * plan.dtype_bytes   # what the step allocates
    measured = measured_peak(cfg)
    assert abs(estimate - measured) <= TOLERANCE * measured, (estimate, measured)


@pytest.mark.parametrize("method", ["adapter_h", "adapter_p"])
def test_bottleneck_adapters_are_planned_conservatively(method, tmp_path):
    """Houlsby and Pfeiffer adapters sit between layers: the plan counts a layer's activations as a trained layer's,
    which a frozen layer beside an adapter does not keep in full: an over-estimate, never an under-estimate."""
    cfg = compose_cfg(["model=tiny_llama", "task=uuid", f"method={method}", "trainer.per_device_train_batch_size=4",
                       "task.max_length=96", "method.r=8"], tmp_path)
    plan = plan_job(cfg)
    estimate = plan.configured.activations + plan.configured.logits + plan.trainable * plan.dtype_bytes
    measured = measured_peak(cfg)
    assert measured <= estimate <= 1.7 * measured, (estimate, measured)


def test_parameters_are_counted_exactly_on_the_meta_device(tmp_path):
    from bench.run.models import load_model, load_tokenizer
    from methods import build_method

    cfg = compose_cfg(["model=tiny_llama", "task=uuid", "method=mora", "method.r=8"], tmp_path)
    plan = plan_job(cfg)
    model = build_method("mora", r=8, target_modules=list(cfg.model.target_modules)).apply(
        load_model(cfg.model, "causal_lm", None, load_tokenizer(cfg.model)))
    assert plan.params == sum(p.numel() for p in model.parameters())
    assert plan.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_a_job_that_does_not_fit_names_the_devices_it_needs(tmp_path):
    cfg = compose_cfg(["experiment=mora_table1_tulu_fft", "scale=paper", "resources=default"], tmp_path)
    plan = plan_job(cfg)
    assert plan.full_training and not plan.sharded   # a 7B FFT on one device, replicated: no fp32 master weights
    needed = plan.devices_needed(USABLE_GB * GB)
    assert needed.endswith("FSDP + checkpointing + fp32 master")
    n = int(needed.split()[0])
    assert plan.memory(n, True, True, master_bytes=4).peak <= USABLE_GB * GB
    assert plan.memory(n // 2, n // 2 > 1, True, master_bytes=4).peak > USABLE_GB * GB   # the fewest that fit


def paper_scale_sweeps() -> list[tuple[str, tuple[str, ...]]]:
    from bench.papers import load, names

    return [sweep for name in names(None) for sweep in load(name, kind=None).plan("paper")]


@pytest.mark.parametrize("experiment, fixed", paper_scale_sweeps())
def test_every_paper_scale_job_fits_a_device_as_configured(experiment, fixed):
    from bench.plan import plan_experiment

    unfit = [f"{p.label}: {p.configured.peak / GB:.0f} GB, needs {p.devices_needed(USABLE_GB * GB)}"
             for p in plan_experiment(experiment, ["scale=paper", *fixed])
             if p.devices_needed(USABLE_GB * GB) != "as configured"]
    assert not unfit, unfit


@pytest.mark.parametrize("experiment, fixed", paper_scale_sweeps())
def test_every_paper_scale_job_passes_the_runs_own_validation(experiment, fixed):
    """Each model × task × method of the sweep (the smoke's cover) composes to a config bench.validate accepts: a pair
    the run refuses (prefix-tuning under gradient checkpointing) is caught here, not hours into a cluster job."""
    from bench.sweep.smoke import sweep_overrides
    from bench.sweep.sweeps import _compose, sweep_jobs
    from bench.validate import validate_config

    overrides, count = sweep_overrides(experiment, fixed)
    jobs = sweep_jobs(experiment, ["scale=paper", *overrides])
    assert len(jobs) == count
    for job in jobs:
        validate_config(_compose(job))
