"""COLA, Chain of LoRA (Xia et al., arXiv 2401.04151): train a LoRA, tie a knot, start a fresh link.

Knot points are fractions of the training budget (paper: chain length 2 over 5 epochs, links on epochs
1–3 and 4–5 → ``knots=[0.6]``). ``ranks`` is the per-link rank schedule; it must start with ``r``
(the paper's step-down is e.g. ``[8, 4]``). Each link has its own scaling α/r_i. The fresh link's A is
kaiming-uniform (``link_init="gaussian"``: N(0, 1/r)), its B zero, so every knot leaves the output unchanged.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from .base import require
from .cost import PerfVariant
from .lora import A_INITS, LoRA, LoraLinear
from .restart import ParamSwap, Restarting, check_fraction_list


class COLA(Restarting, LoRA):
    name = "cola"
    label = "COLA"

    def __init__(self, knots=(0.6,), ranks=None, link_init: str = "kaiming", **kwargs):
        super().__init__(**kwargs)
        self.knots = check_fraction_list(self.name, "knots", list(knots))
        ranks = [self.r] * (len(self.knots) + 1) if ranks is None else list(ranks)
        require(
            len(ranks) == len(self.knots) + 1 and all(isinstance(x, int) and x > 0 for x in ranks) and ranks[0] == self.r,
            self.name, "ranks", ranks, f"{len(self.knots) + 1} positive integers (one per link) starting with r={self.r}",
        )
        require(link_init in A_INITS, self.name, "link_init", link_init, f"one of {sorted(A_INITS)}")
        self.ranks = ranks
        self.link_init = link_init

    def validate_layer(self, name: str, base_layer: nn.Linear) -> None:
        super().validate_layer(name, base_layer)
        limit = min(base_layer.in_features, base_layer.out_features)
        require(max(self.ranks) <= limit, self.name, "ranks", self.ranks, f"every rank <= min(out, in) = {limit} for layer {name}")

    def knot_schedule(self, total_steps: int) -> list[int]:
        return sorted({max(1, round(f * total_steps)) for f in self.knots})

    def next_link(self, layer: LoraLinear, link_index: int) -> list[ParamSwap]:
        r = self.ranks[min(link_index, len(self.ranks) - 1)]
        retired = [layer.lora_A, layer.lora_B]
        fresh = layer.reset_link(r, self.scaling_for(r), self.link_init)
        return list(zip(retired, fresh))

    def hparams(self) -> dict:
        return {**super().hparams(), "knots": self.knots, "ranks": self.ranks, "link_init": self.link_init}

    def restarts_per_epoch(self, epoch_steps: int) -> float:
        return len(self.knots)  # the whole chain's knots fall inside the run the benchmark's epoch stands for

    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        return [PerfVariant("cola (2 links)", {"knots": [0.5]}, goals=(("vs_lora", 1.02, None),))]

    @classmethod
    def table_label(cls, cfg: Mapping[str, Any]) -> str:
        return cls.label if cfg.get("knots") else "LoRA"  # a chain of length 1 is plain LoRA

    @classmethod
    def rank_label(cls, cfg: Mapping[str, Any]) -> str:
        ranks = cfg.get("ranks")
        return f"{ranks[0]}->{ranks[1]}" if ranks and len(ranks) == 2 else super().rank_label(cfg)  # a step-down

    @classmethod
    def setting_label(cls, cfg: Mapping[str, Any]) -> str:
        return f"chain length {len(cfg.get('knots') or []) + 1}"
