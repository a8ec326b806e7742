"""Sibling adapter layers that read one input (q/k/v, gate/up) computed as one node: LoRA's in
methods/fast/lora.py, MoRA's in methods/fast/mora.py (each layer class's ``group_forward``).

The model calls its layers one by one: q_proj(x), k_proj(x), v_proj(x). The group answers the first call with the
outputs of all its layers on x and keeps the others until their own calls come with that same x. On a small model
what per-module dispatch costs beyond the arithmetic is the thin products a group shares: the forward's x·A_catᵀ
(MoRA: one compression, one product with the stacked M's) and the backward's A and input gradients. Which siblings
read one input is a property of the architecture, so the method names candidates
(``AdapterMethod.shared_input_siblings``) and the group checks it at run time: a call with another input
(cross-attention's keys and values), a repeated call, or an input changed in place since, ends the sharing for good
and every layer goes back to its own node, with the same result.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch


class _Pending:
    """The outputs computed for layers not yet called, and the input they were computed on."""

    def __init__(self, x: torch.Tensor, outputs: dict[int, torch.Tensor]):
        self.x_ref, self.version = weakref.ref(x), x._version
        self.grad_enabled = torch.is_grad_enabled()
        self.outputs = outputs

    def serves(self, x: torch.Tensor) -> bool:
        return self.x_ref() is x and x._version == self.version and torch.is_grad_enabled() == self.grad_enabled


class SharedInputGroup:
    def __init__(self, layers: Sequence):
        self.layers = list(layers)
        self.active = True
        self._pending: _Pending | None = None

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor | None:
        """This layer's output on x, or None where the layer must compute it alone."""
        index = next(i for i, member in enumerate(self.layers) if member is layer)
        pending = self._pending
        if pending is not None:
            if pending.serves(x) and index in pending.outputs:
                out = pending.outputs.pop(index)
                if not pending.outputs:
                    self._pending = None
                return out
            self._pending = None
            if pending.outputs:  # a sibling never read the input it was computed for: these layers do not share one
                self.active = False
                return None
        outputs = type(layer).group_forward(x, self.layers)
        if outputs is None:  # not this time (dropout, a dtype the fast path does not take): each layer alone
            return None
        self._pending = _Pending(x, {i: out for i, out in enumerate(outputs) if i != index})
        return outputs[index]

    def __getstate__(self):  # pickling a model (torch.save, deepcopy) carries no step's activations
        return {"layers": self.layers, "active": self.active, "_pending": None}


def group_siblings(model: torch.nn.Module, siblings: Sequence[Sequence[str]], layer_type: type) -> int:
    """Give every set of sibling ``layer_type`` layers named in ``siblings`` (same parent, same input width) one
    SharedInputGroup; returns the number of groups. ``layer_type.group_forward(x, layers)`` computes a group's
    outputs (or returns None to leave each layer to itself)."""
    count = 0
    for parent in model.modules():
        for names in siblings:
            layers = [getattr(parent, name, None) for name in names]
            layers = [layer for layer in layers if isinstance(layer, layer_type)]
            if len(layers) < 2 or len({(type(layer), layer.in_features) for layer in layers}) != 1:
                continue
            group = SharedInputGroup(layers)
            for layer in layers:
                layer.input_group = group
            count += 1
    return count
