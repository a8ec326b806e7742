"""What a method costs, in the terms its hooks answer in: the model's linear shapes, the multiply-accumulates (MACs)
per token a training step adds to the frozen model's, and the rows ``bench.perf`` times a method under.

``AdapterMethod.macs_per_token`` counts each adapted module's forward and its two backward products (the gradient
to its input and to its trainable factors), plus any per-step term spread over the batch's tokens; ``bench.perf``
holds the measured step against the frozen model's 2·F plus that count (``bench/perf/model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

from torch import nn

from .targets import module_matches


@dataclass(frozen=True)
class Linear:
    name: str
    d: int   # out_features
    k: int   # in_features


@dataclass(frozen=True)
class ModelShape:
    linears: tuple[Linear, ...]
    layers: int
    attention_width: int  # heads × head_dim of the queries
    causal: bool

    @classmethod
    def of(cls, model: nn.Module) -> "ModelShape":
        config = model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        linears = tuple(Linear(n, m.out_features, m.in_features) for n, m in model.named_modules() if isinstance(m, nn.Linear))
        return cls(linears, config.num_hidden_layers, config.num_attention_heads * head_dim,
                   causal=type(model).__name__.endswith("ForCausalLM"))

    def targets(self, target_modules) -> list[Linear]:
        return [lin for lin in self.linears if module_matches(lin.name, target_modules)]

    def keys_per_query(self, seq_len: int) -> float:
        return (seq_len + 1) / 2 if self.causal else seq_len

    def forward_macs(self, seq_len: int) -> float:
        """F: one token's forward through the frozen model: every linear layer's d·k plus attention's two products
        (scores and values: 2·heads·head_dim per key a query sees; a causal model's query sees (L+1)/2 keys)."""
        attention = self.layers * 2 * self.attention_width * self.keys_per_query(seq_len)
        return self.linear_macs() + attention

    def linear_macs(self) -> float:
        return float(sum(lin.d * lin.k for lin in self.linears))


def low_rank_macs(targets: Sequence[Linear], r: int) -> int:
    """A trained rank-r pair B·A on each target: its forward and both backward products, 3·(d+k)·r."""
    return sum(3 * (t.d + t.k) * r for t in targets)


def orthogonal_regulariser_macs(targets: Sequence[Linear], r: int, tokens: int) -> float:
    """‖AᵀA − I‖ and ‖BᵀB − I‖ once a step (SaLoRA, AdaLoRA): 3·r²·(d+k) per target, spread over the step's tokens."""
    return sum(3 * r * r * (t.d + t.k) for t in targets) / tokens


class PerfVariant(NamedTuple):
    """One ``bench.perf`` row of a method: its name, the hyperparameters it adds, where in training it is timed
    (``progress``: e.g. inside SaLoRA's gate window) and the goals the row is held to, each (ratio key, limit,
    ranks it applies at or None for every rank)."""

    name: str
    kwargs: Mapping[str, Any] = {}
    progress: float = 0.5
    goals: tuple[tuple[str, float, tuple[str, ...] | None], ...] = ()
