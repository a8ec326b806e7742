"""The arithmetic a training step needs, per method: the physical reference `bench.perf`'s timings are held against.

Counted in multiply-accumulates (MACs) per token of the batch:

* **floor** — the frozen model's forward and its input-gradient backward: 2·F, where F is every linear layer's
  d·k plus attention's two products (scores and values: 2·heads·head_dim per key a query sees; a causal model's
  query sees (L+1)/2 keys on average).
* **adapters** — each adapted module adds its forward and its two backward products (the gradient to its input and
  to its trainable factors): LoRA 3·(d+k)·r; MoRA truncation/sharing 3·r̂², decoupling/rotation 3·c·r̂² with
  c = ⌈k/r̂⌉ blocks; a bottleneck of width m 3·2·d·m. Where a factor is frozen its weight gradient is not needed
  (AsyLoRA's A: 2·(d+k)·r + d·r).
* **per-step terms**, spread over the batch's tokens: DoRA's column norm of W + s·BA (d·k·r, detached as in peft),
  the orthogonality regularisers of SaLoRA and AdaLoRA (‖AᵀA − I‖, ‖BᵀB − I‖: 3·r²·(d+k)).
* **FFT** adds every linear layer's weight gradient (F_linear); **prefix-tuning** P more keys per layer
  (3·2·P·heads·head_dim); **prompt-tuning** makes every sequence L + P long, so the whole step scales by (L+P)/L.

Everything else a step does (norms, activations, softmax, the optimizer) is elementwise: it costs time, not
arithmetic, and is what the measured ratio over this prediction — the overhead beyond arithmetic — shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from methods.base import _module_matches
from methods.mora import mora_rank

LORA_FAMILY = ("lora", "peft", "olora", "cola", "relora", "loraplus", "salora", "adalora", "dora")
ORTHOGONAL_REGULARISED = ("salora", "adalora")


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
        return [lin for lin in self.linears if _module_matches(lin.name, target_modules)]

    def keys_per_query(self, seq_len: int) -> float:
        return (seq_len + 1) / 2 if self.causal else seq_len

    def forward_macs(self, seq_len: int) -> float:
        """F: one token's forward through the frozen model."""
        attention = self.layers * 2 * self.attention_width * self.keys_per_query(seq_len)
        return self.linear_macs() + attention

    def linear_macs(self) -> float:
        return float(sum(lin.d * lin.k for lin in self.linears))


def adapter_macs(method: str, shape: ModelShape, targets: list[Linear], r: int, tokens: int, seq_len: int,
                 mora_type: str = "sharing", bottleneck: int | None = None, positions: list[Linear] | None = None,
                 virtual_tokens: int = 20) -> float:
    """The MACs per token a method adds to the floor's 2·F (see the module docstring for each term)."""
    if method in LORA_FAMILY:
        macs = sum(3 * (t.d + t.k) * r for t in targets)
        if method == "dora":
            macs += sum(t.d * t.k * r for t in targets) / tokens
        if method in ORTHOGONAL_REGULARISED:
            macs += sum(3 * r * r * (t.d + t.k) for t in targets) / tokens
        return float(macs)
    if method == "asylora":
        return float(sum(2 * (t.d + t.k) * r + t.d * r for t in targets))
    if method in ("mora", "remora"):
        total = 0.0
        for t in targets:
            r_hat = mora_rank(t.d, t.k, r, mora_type)
            blocks = math.ceil(t.k / r_hat) if mora_type in ("decoupling", "rotation") else 1
            total += 3 * blocks * r_hat * r_hat
        return total
    if method == "fft":
        return shape.linear_macs()
    if method in ("adapter_h", "adapter_p"):
        return float(sum(3 * 2 * p.d * bottleneck for p in positions or []))
    if method == "prefix":
        return float(shape.layers * 3 * 2 * virtual_tokens * shape.attention_width)
    if method == "prompt":
        return 2 * shape.forward_macs(seq_len + virtual_tokens) * (seq_len + virtual_tokens) / seq_len \
            - 2 * shape.forward_macs(seq_len)
    raise ValueError(f"perf_model: no arithmetic for method {method!r}")


def floor_macs(shape: ModelShape, seq_len: int) -> float:
    return 2 * shape.forward_macs(seq_len)


def predicted_ratio(method: str | None, shape: ModelShape, seq_len: int, tokens: int, **kwargs) -> float:
    """The step's arithmetic over the floor's: what the row's measured ratio to the floor would be at the hardware's
    pace for every MAC and no cost for anything else."""
    if method is None:
        return 1.0
    floor = floor_macs(shape, seq_len)
    return (floor + adapter_macs(method, shape, tokens=tokens, seq_len=seq_len, **kwargs)) / floor
