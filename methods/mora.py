"""MoRA (Jiang et al., arXiv 2405.12130): one square trainable M with non-parametric compress/decompress.

Δy = f_decomp(M · f_comp(x)); M is r̂×r̂, zero-initialised, r̂ = ⌊√((d+k)·r)⌋ (rounded down to even for
rotation) so r̂² ≤ LoRA's (d+k)·r trainable parameters. α is unused (scale 1), as the official code.

Conventions (d = out_features, k = in_features):

* **Padding.** The input is padded to k' = c·r̂, c = ⌈k/r̂⌉, by wrap-around: padded position t reads
  input t mod k. This repeats the first p = k' − k inputs (the official code) and also covers k < r̂,
  where the official code crashes.
* **truncation** (Eq. 4): f_comp keeps the first r̂ padded inputs; f_decomp pads the r̂ outputs with
  zeros up to d (or keeps the first d when d < r̂).
* **sharing** (Eq. 6, official type 1): f_comp sums padded inputs by group t mod r̂ ("interleaved");
  f_decomp tiles: output i reads M-output i mod r̂. ReMoRA alternates with the "contiguous" grouping
  (groups of c consecutive padded inputs; each M-output repeated ⌈d/r̂⌉ times in a row), the paper's
  g/g′ switch between restarts.
* **decoupling** (Eq. 8): the padded input is split into c blocks of r̂; M is applied to every block,
  the results concatenated (length c·r̂) then truncated to d, or tiled (i ↦ i mod c·r̂) when c·r̂ < d.
* **rotation** (Eq. 9, official type 6): decoupling where block b is first rotated RoPE-style with
  rotate-half pairing (q, q + r̂/2) and angle θ_{b,q} = b·10000^(−2q/r̂).

Forward is reshapes, sums and one matmul; ``delta_weight`` pushes the identity through the same map
(no Python loop over features), so merged and unmerged models agree by construction.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import SIBLINGS_READING_ONE_INPUT, AdapterLinear, AdapterMethod, require
from .cost import ModelShape, PerfVariant
from .fast.mora import BLOCKWISE, add_decompressed_, compress, mora_group

MORA_TYPES = ("truncation", "sharing", "decoupling", "rotation")
SHARING_GROUPINGS = ("interleaved", "contiguous")


def mora_rank(out_features: int, in_features: int, r: int, mora_type: str) -> int:
    r_hat = math.isqrt((out_features + in_features) * r)
    if mora_type == "rotation":
        r_hat -= r_hat % 2
    return r_hat


def _tile(h: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat the last dim cyclically (i ↦ i mod n) to ``length`` entries."""
    n = h.shape[-1]
    if n >= length:
        return h[..., :length]
    reps = -(-length // n)
    return h.repeat(*([1] * (h.dim() - 1)), reps)[..., :length]


class MoraLinear(AdapterLinear):
    def __init__(self, base_layer: nn.Linear, r_hat: int, mora_type: str, dropout: float):
        super().__init__(base_layer)
        self.r_hat = r_hat
        self.mora_type = mora_type
        self.sharing_grouping = "interleaved"
        self.retired_links: list[tuple[torch.Tensor, str]] = []   # ReMoRA: each restart's (M, grouping), for ΔW
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        device = base_layer.weight.device
        self.mora_M = nn.Parameter(torch.zeros(r_hat, r_hat, device=device))
        self.n_blocks = -(-self.in_features // r_hat)
        padded = self.n_blocks * r_hat
        # Buffers, so .to(device) moves them and merged/unmerged stay consistent; not persistent: derivable.
        self.register_buffer("pad_index", torch.arange(padded, device=device) % self.in_features, persistent=False)
        if mora_type == "rotation":
            half = r_hat // 2
            inv_freq = 10000.0 ** (-2.0 * torch.arange(half, dtype=torch.float64) / r_hat)
            angles = torch.outer(torch.arange(self.n_blocks, dtype=torch.float64), inv_freq)
            angles = torch.cat([angles, angles], dim=-1)
            self.register_buffer("rope_cos", angles.cos().float().to(device), persistent=False)
            self.register_buffer("rope_sin", angles.sin().float().to(device), persistent=False)

    # --- the two non-parametric operators -------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        padded = self.pad_index.numel()
        if padded == self.in_features:
            return x
        if padded - self.in_features <= self.in_features:
            return torch.cat([x, x[..., : padded - self.in_features]], dim=-1)
        return x.index_select(-1, self.pad_index)

    def compress(self, x: torch.Tensor) -> torch.Tensor:
        r_hat, mora_type = self.r_hat, self.mora_type
        if mora_type == "truncation":
            if self.in_features >= r_hat:
                return x[..., :r_hat]
            return x.index_select(-1, self.pad_index[:r_hat])
        blocks = self._pad(x).unflatten(-1, (self.n_blocks, r_hat))
        if mora_type == "sharing":
            if self.sharing_grouping == "interleaved":
                return blocks.sum(dim=-2)
            return self._pad(x).unflatten(-1, (r_hat, self.n_blocks)).sum(dim=-1)
        if mora_type == "rotation":
            half = r_hat // 2
            rotated_half = torch.cat([-blocks[..., half:], blocks[..., :half]], dim=-1)
            return blocks * self.rope_cos.to(x.dtype) + rotated_half * self.rope_sin.to(x.dtype)
        return blocks  # decoupling

    def decompress(self, h: torch.Tensor) -> torch.Tensor:
        d = self.out_features
        if self.mora_type == "truncation":
            return F.pad(h, (0, d - self.r_hat)) if d >= self.r_hat else h[..., :d]
        if self.mora_type == "sharing":
            if self.sharing_grouping == "interleaved":
                return _tile(h, d)
            group = -(-d // self.r_hat)
            return h.repeat_interleave(group, dim=-1)[..., :d]
        return _tile(h.flatten(-2), d)  # decoupling, rotation: concatenate the blocks

    def mora_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.decompress(F.linear(self.compress(x), self.mora_M))

    # --- the fast path: each operator as one node (methods/fast/mora.py) -------------------------------
    def _fast_path(self, x: torch.Tensor) -> bool:
        """One node in the base's dtype: truncation and sharing (either grouping) where every input is read (k ≥ r̂),
        the compression slices and block sums, the decompression added into the frozen output in place;
        decoupling and rotation without dropout (methods/fast/mora.py)."""
        if self.mora_type in BLOCKWISE:
            applies = isinstance(self.lora_dropout, nn.Identity)
        else:
            applies = self.in_features >= self.r_hat
        return applies and x.dtype == self.mora_M.dtype == self.base_layer.weight.dtype \
            and not torch.is_autocast_enabled(x.device.type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.shared_output(x)
        if shared is not None:
            return shared
        if not self._fast_path(x):
            return super().forward(x)
        if isinstance(self.lora_dropout, nn.Identity):
            (out,) = mora_group(x, [self])
            return out
        # dropout: the adapter reads another tensor than the frozen layer; the same operators, composed
        x_adapter = self.lora_dropout(x)
        operator = (self.mora_type, self.sharing_grouping)
        h = F.linear(compress(x_adapter.reshape(-1, self.in_features), self.r_hat, *operator), self.mora_M)
        return add_decompressed_(self.base_layer(x), h.view(*x.shape[:-1], self.r_hat), *operator)

    @classmethod
    def group_forward(cls, x, layers):
        """Siblings with one compression (same operator, r̂, grouping; no dropout) compress x once and apply their
        M's as one product; each decompresses its own slice."""
        first = layers[0]
        if any(not isinstance(layer.lora_dropout, nn.Identity) or layer.mora_M.dtype != first.mora_M.dtype
               or (layer.mora_type, layer.r_hat, layer.sharing_grouping) != (first.mora_type, first.r_hat,
                                                                             first.sharing_grouping)
               for layer in layers):
            return None
        if all(layer._fast_path(x) for layer in layers):
            return mora_group(x, layers)
        M_cat = torch.cat([layer.mora_M for layer in layers])
        h = F.linear(first.compress(x.to(first.adapter_dtype)), M_cat)
        outputs = []
        for i, layer in enumerate(layers):
            result = layer.base_layer(x)
            outputs.append(result + layer.decompress(h[..., i * first.r_hat: (i + 1) * first.r_hat]).to(result.dtype))
        return tuple(outputs)

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mora_map(self.lora_dropout(x))

    def delta_weight(self) -> torch.Tensor:
        return self._delta_of(self.mora_M)

    def _delta_of(self, M: torch.Tensor) -> torch.Tensor:
        # Δy = ΔW x for all x, so ΔWᵀ is the map (with this M) applied to the identity's rows.
        eye = torch.eye(self.in_features, device=M.device, dtype=torch.float32)
        with torch.autocast(device_type=eye.device.type, enabled=False):
            return self.decompress(F.linear(self.compress(eye), M)).T.float()

    @torch.no_grad()
    def retired_delta(self) -> torch.Tensor | float:
        """Each retired M through this layer's operators, with the sharing grouping it was trained under."""
        grouping, total = self.sharing_grouping, 0.0
        try:
            for M, link_grouping in self.retired_links:
                self.sharing_grouping = link_grouping
                total = total + self._delta_of(M)
        finally:
            self.sharing_grouping = grouping
        return total

    @torch.no_grad()
    def reset_link(self) -> list[nn.Parameter]:
        """ReMoRA restart: M zeroed in place and the other sharing grouping; returns M (its optimizer state must go)."""
        self.retired_links.append((self.mora_M.detach().clone(), self.sharing_grouping))
        self.mora_M.zero_()
        if self.mora_type == "sharing":
            other = SHARING_GROUPINGS[(SHARING_GROUPINGS.index(self.sharing_grouping) + 1) % len(SHARING_GROUPINGS)]
            self.sharing_grouping = other
        return [self.mora_M]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r_hat={self.r_hat}, mora_type={self.mora_type}"


class MoRA(AdapterMethod):
    name = "mora"
    label = "MoRA"
    layer_class = MoraLinear
    shared_input_siblings = SIBLINGS_READING_ONE_INPUT
    low_rank_family = False  # r only sets the parameter budget; r̂ may exceed min(d, k)
    final_state_keys = ("mora_M",)
    LORA_FORM = ("sharing", "truncation")  # operators that are a rank-r̂ LoRA: compress and decompress are linear maps

    def __init__(self, mora_type: str = "sharing", **kwargs):
        super().__init__(**kwargs)
        require(mora_type in MORA_TYPES, self.name, "mora_type", mora_type, f"one of {list(MORA_TYPES)}")
        self.mora_type = mora_type

    @property
    def scaling(self) -> float:
        return 1.0

    def validate_layer(self, name: str, base_layer: nn.Linear) -> None:
        r_hat = mora_rank(base_layer.out_features, base_layer.in_features, self.r, self.mora_type)
        minimum = 2 if self.mora_type == "rotation" else 1
        require(r_hat >= minimum, self.name, "r", self.r, f"an r giving r_hat >= {minimum} for layer {name}")

    def make_layer(self, name: str, base_layer: nn.Linear) -> AdapterLinear:
        r_hat = mora_rank(base_layer.out_features, base_layer.in_features, self.r, self.mora_type)
        return MoraLinear(base_layer, r_hat, self.mora_type, self.dropout)

    def hparams(self) -> dict:
        return {**super().hparams(), "mora_type": self.mora_type}

    @property
    def peft_lora_export(self) -> bool:
        return self.mora_type in self.LORA_FORM

    def lora_factors(self, layer: MoraLinear) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The rank-r̂ LoRA the layer is: A' = f_comp as a matrix, B' = f_decomp applied to M's columns."""
        if not self.peft_lora_export:
            return None
        eye = torch.eye(layer.in_features, device=layer.mora_M.device)
        A = layer.compress(eye).T.float()                 # r̂ × k: the compression as a matrix
        B = layer.decompress(layer.mora_M.detach().float().T).T  # d × r̂: decompression applied to M's columns
        return B, A

    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        lora_parity = (("vs_lora", 1.00, None),)  # the operators that are a LoRA are held to LoRA's step
        return [PerfVariant(f"mora ({t})", {"mora_type": t}, goals=lora_parity if t in cls.LORA_FORM else ())
                for t in MORA_TYPES]

    def activation_bytes(self, fan_in: int, fan_out: int, dtype_bytes: int) -> float:
        """The fused node keeps the (dropped) input it already holds for the frozen product and recomputes the
        compressed one: beyond the frozen layer, only a dropped input."""
        return fan_in * dtype_bytes if self.dropout else 0.0

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """3·r̂² per target for truncation and sharing; 3·c·r̂² for decoupling and rotation, M on each of the
        c = ⌈k/r̂⌉ blocks."""
        total = 0.0
        for t in shape.targets(self.target_modules):
            r_hat = mora_rank(t.d, t.k, self.r, self.mora_type)
            blocks = math.ceil(t.k / r_hat) if self.mora_type in BLOCKWISE else 1
            total += 3 * blocks * r_hat * r_hat
        return total

    @classmethod
    def setting_label(cls, cfg: Mapping[str, Any]) -> str:
        return f"operator={cfg['mora_type']}" if "mora_type" in cfg else ""
