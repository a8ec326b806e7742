"""The arithmetic a training step needs: the physical reference `bench.perf`'s timings are held against.

Counted in multiply-accumulates (MACs) per token of the batch:

* **floor** — the frozen model's forward and its input-gradient backward: 2·F, where F is every linear layer's
  d·k plus attention's two products (``methods.cost.ModelShape.forward_macs``).
* **a method** — what its ``macs_per_token`` hook adds to the floor: each adapted module's forward and its two
  backward products (the gradient to its input and to its trainable factors), and its per-step terms spread over
  the batch's tokens (the hook's docstring states each method's terms).

Everything else a step does (norms, activations, softmax, the optimizer) is elementwise: it costs time, not
arithmetic, and is what the measured ratio over this prediction — the overhead beyond arithmetic — shows.
"""

from __future__ import annotations

from torch import nn

from methods import AdapterMethod
from methods.cost import ModelShape


def floor_macs(shape: ModelShape, seq_len: int) -> float:
    return 2 * shape.forward_macs(seq_len)


def predicted_ratio(method: AdapterMethod | None, shape: ModelShape, base: nn.Module, seq_len: int, tokens: int) -> float:
    """The step's arithmetic over the floor's (``method`` None: the floor itself): what the row's measured ratio to
    the floor would be at the hardware's pace for every MAC and no cost for anything else."""
    if method is None:
        return 1.0
    floor = floor_macs(shape, seq_len)
    return (floor + method.macs_per_token(shape, base, tokens=tokens, seq_len=seq_len)) / floor
