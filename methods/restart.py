"""The knot: merge the current adapter into the frozen weight, start a fresh one, drop its optimizer state.

Shared by COLA (knots at fractions of the budget, per-link ranks), ReLoRA and ReMoRA (a restart every
N steps). A method mixes in :class:`Restarting`, supplies ``knot_schedule`` and ``next_link``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .base import AdapterLinear, require

ParamSwap = tuple[nn.Parameter, nn.Parameter]  # (retired, fresh); the same object when re-initialised in place


class Restarting:
    """Mixin for an AdapterMethod whose adapters are periodically folded into the base and restarted."""

    link_index: int = 0
    _knot_steps: list[int] = []
    one_time_cost = "restart"  # bench.perf times a knot once and spreads it over restarts_per_epoch

    def knot_schedule(self, total_steps: int) -> list[int]:
        raise NotImplementedError

    def next_link(self, layer: AdapterLinear, link_index: int) -> list[ParamSwap]:
        """Replace the layer's trainable adapter with a fresh one; return (retired, fresh) pairs."""
        raise NotImplementedError

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self._knot_steps = self.knot_schedule(total_steps)

    @property
    def knot_steps(self) -> list[int]:
        return list(self._knot_steps)

    def knot_due(self, step: int) -> bool:
        return step in self._knot_steps

    @torch.no_grad()
    def tie_knot(self, model: nn.Module) -> list[ParamSwap]:
        """W ← W + ΔW (fp32) in every adapted layer, then a fresh link; returns the (retired, fresh) params."""
        swaps: list[ParamSwap] = []
        for _, layer in self.adapted_layers(model):
            layer.fold_delta_into_base()
            swaps += self.next_link(layer, self.link_index + 1)
        self.link_index += 1
        return swaps

    @torch.no_grad()
    def fast_forward(self, model: nn.Module, link_index: int) -> None:
        """On resume: give every layer the shapes of link ``link_index`` (weights then come from the checkpoint)."""
        for index in range(self.link_index + 1, link_index + 1):
            for _, layer in self.adapted_layers(model):
                self.next_link(layer, index)
        self.link_index = link_index

    def restore_structure(self, model: nn.Module, state: dict[str, Any]) -> None:
        self.fast_forward(model, int(state.get("link_index", 0)))

    def base_weights_changed(self) -> bool:
        return self.link_index > 0

    def log_stats(self, model: nn.Module) -> dict[str, float]:
        return {"link": float(self.link_index)}

    def state_dict(self, model: nn.Module | None = None) -> dict[str, Any]:
        state = {"link_index": self.link_index, "knot_steps": list(self._knot_steps)}
        if model is not None:  # the retired links, so an export after a resume still sees the whole chain
            state["links"] = {name: list(getattr(layer, "retired_links", [])) for name, layer in self.adapted_layers(model)}
        return state

    def load_state_dict(self, state: dict[str, Any], model: nn.Module | None = None) -> None:
        self.link_index = int(state.get("link_index", 0))
        self._knot_steps = list(state.get("knot_steps", self._knot_steps))
        if model is not None and "links" in state:
            for name, layer in self.adapted_layers(model):
                if hasattr(layer, "retired_links"):
                    layer.retired_links = list(state["links"].get(name, []))


def swap_optimizer_params(optimizer: torch.optim.Optimizer, swaps: list[ParamSwap]) -> None:
    """Put each fresh parameter where its retired one was, with no state: the new link starts cold."""
    fresh_for = {id(old): new for old, new in swaps}
    for group in optimizer.param_groups:
        group["params"] = [fresh_for.get(id(p), p) for p in group["params"]]
    for old, new in swaps:
        optimizer.state.pop(old, None)
        optimizer.state.pop(new, None)


def check_fraction_list(method: str, key: str, values: Any) -> list[float]:
    ok = isinstance(values, (list, tuple)) and all(isinstance(v, (int, float)) and 0 < v < 1 for v in values)
    require(ok and list(values) == sorted(set(values)), method, key, values, "a strictly increasing list of fractions in (0, 1)")
    return [float(v) for v in values]


class PeriodicRestart(Restarting):
    """ReLoRA-style schedule: a knot every ``restart_every`` optimizer steps."""

    def __init__(self, restart_every: int = 100, restart_warmup: int = 0, **kwargs):
        super().__init__(**kwargs)
        require(isinstance(restart_every, int) and restart_every > 0, self.name, "restart_every", restart_every, "an integer >= 1")
        require(isinstance(restart_warmup, int) and 0 <= restart_warmup < restart_every, self.name, "restart_warmup",
                restart_warmup, f"an integer in [0, restart_every={restart_every})")
        self.restart_every = restart_every
        self.restart_warmup = restart_warmup

    def knot_schedule(self, total_steps: int) -> list[int]:
        return list(range(self.restart_every, total_steps, self.restart_every))

    @classmethod
    def perf_kwargs(cls, epoch_steps: int, restart_every: int) -> dict[str, Any]:
        return {"restart_every": restart_every}

    def restarts_per_epoch(self, epoch_steps: int) -> float:
        return epoch_steps / self.restart_every

    @property
    def lr_factor(self) -> Callable[[int], float] | None:
        return self.rewarm_factor if self.restart_warmup else None

    def rewarm_factor(self, step: int) -> float:
        """ReLoRA's jagged schedule (Lialin et al. 2023, Fig. 2): at every restart the learning rate drops to zero and
        warms up linearly over ``restart_warmup`` steps back to the base schedule, which it multiplies. ``step`` counts
        optimizer steps done, as a LambdaLR's lambda sees it (a knot is tied after step k: step k + 1 runs at 0)."""
        if not self.restart_warmup or step < self.restart_every:
            return 1.0
        return min(1.0, (step % self.restart_every) / self.restart_warmup)

    def hparams(self) -> dict:
        return {**super().hparams(), "restart_every": self.restart_every, "restart_warmup": self.restart_warmup}
