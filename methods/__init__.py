"""The adapter methods lorabench benchmarks. The math only: no Hydra, no I/O.

    from methods import build_method, METHODS
    m = build_method("mora", r=8, mora_type="rotation", target_modules=["q_proj", "v_proj"])
    model = m.apply(model)
    plain = m.merge(model)

A method is its math and its hooks (methods/base.py); a new one registers itself (methods/registry.py), from this
folder or from a plugin module named in LORABENCH_PLUGINS.
"""

from __future__ import annotations

from typing import Any

from .asylora import AsyLoRA
from .base import AdapterLinear, AdapterMethod
from .bottleneck import HoulsbyAdapter, PfeifferAdapter
from .cola import COLA
from .fft import FullFineTuning
from .lora import LoRA
from .loraplus import LoRAPlus
from .mora import MORA_TYPES, MoRA
from .olora import OLoRA
from .peft_backed import AdaLoRA, DoRA, PrefixTuning, PromptTuning
from .registry import METHODS, PLUGINS_ENV, load_plugins, register
from .relora import ReLoRA
from .remora import ReMoRA
from .restart import Restarting, swap_optimizer_params
from .salora import SaLoRA

# In this order: listings and bench.perf's rows follow it.
for _method in (LoRA, OLoRA, COLA, SaLoRA, MoRA, ReLoRA, ReMoRA,
                # the papers' baselines
                FullFineTuning, DoRA, LoRAPlus, AsyLoRA, AdaLoRA, PrefixTuning, PromptTuning,
                HoulsbyAdapter, PfeifferAdapter):
    register(_method)
del _method
BASELINES = ("fft", "dora", "loraplus", "asylora", "adalora", "prefix", "prompt", "adapter_h", "adapter_p")


def build_method(name: str, **kwargs: Any) -> AdapterMethod:
    """Instantiate a method by registry name; unknown names and bad hyperparameters raise a one-line ValueError."""
    if name not in METHODS:
        raise ValueError(f"method: invalid name={name!r}; valid: {sorted(METHODS)}")
    try:
        return METHODS[name](**kwargs)
    except TypeError as err:  # an unknown keyword: name it and list the accepted ones
        import inspect

        accepted = sorted({
            p for cls in METHODS[name].__mro__ if cls is not object
            for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")
        })
        raise ValueError(f"{name}: invalid hyperparameter ({err}); valid: {accepted}") from None


load_plugins()  # last: a plugin module imports this package's names

__all__ = [
    "METHODS", "MORA_TYPES", "PLUGINS_ENV", "AdapterLinear", "AdapterMethod", "Restarting", "build_method", "register",
    "swap_optimizer_params",
    "COLA", "LoRA", "MoRA", "OLoRA", "ReLoRA", "ReMoRA", "SaLoRA", "BASELINES",
    "AdaLoRA", "AsyLoRA", "DoRA", "FullFineTuning", "HoulsbyAdapter", "LoRAPlus", "PfeifferAdapter", "PrefixTuning",
    "PromptTuning",
]
