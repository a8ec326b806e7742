"""MoRA: ΔW against dense matrices written straight from the paper's equations (Eq. 4/6/8/9)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from methods import MORA_TYPES, build_method
from methods.mora import MoraLinear, mora_rank
from tests.conftest import LLAMA_TARGETS, tiny_llama


def padding_matrix(k: int, r_hat: int) -> torch.Tensor:
    """P (k'×k): padded position t reads input t mod k (wrap-around), k' = ⌈k/r̂⌉·r̂."""
    c = math.ceil(k / r_hat)
    P = torch.zeros(c * r_hat, k)
    for t in range(c * r_hat):
        P[t, t % k] = 1.0
    return P


def rotation_matrix(r_hat: int, block: int) -> torch.Tensor:
    """R_b: rotate pair (q, q + r̂/2) by θ = b·10000^(−2q/r̂)."""
    h = r_hat // 2
    R = torch.zeros(r_hat, r_hat, dtype=torch.float64)
    for q in range(h):
        theta = block * 10000 ** (-2 * q / r_hat)
        R[q, q], R[q, q + h] = math.cos(theta), -math.sin(theta)
        R[q + h, q], R[q + h, q + h] = math.sin(theta), math.cos(theta)
    return R.float()


def oracle_delta(M: torch.Tensor, d: int, k: int, mora_type: str, grouping: str = "interleaved") -> torch.Tensor:
    r_hat = M.shape[0]
    c = math.ceil(k / r_hat)
    P = padding_matrix(k, r_hat)
    if mora_type == "truncation":  # Eq. 4: first r̂ inputs in, zero-padded outputs
        comp = torch.zeros(r_hat, c * r_hat)
        for i in range(r_hat):
            comp[i, i] = 1.0
        dec = torch.zeros(d, r_hat)
        for i in range(min(d, r_hat)):
            dec[i, i] = 1.0
        return dec @ M @ comp @ P
    if mora_type == "sharing":  # Eq. 6: inputs summed per group, outputs shared per group
        comp = torch.zeros(r_hat, c * r_hat)
        dec = torch.zeros(d, r_hat)
        group = math.ceil(d / r_hat)
        for t in range(c * r_hat):
            comp[t % r_hat if grouping == "interleaved" else t // c, t] = 1.0
        for i in range(d):
            dec[i, i % r_hat if grouping == "interleaved" else i // group] = 1.0
        return dec @ M @ comp @ P
    # Eq. 8 / 9: the same M on every block (block b rotated first for Eq. 9), outputs concatenated
    core = torch.zeros(c * r_hat, c * r_hat)
    for b in range(c):
        Rb = rotation_matrix(r_hat, b) if mora_type == "rotation" else torch.eye(r_hat)
        core[b * r_hat:(b + 1) * r_hat, b * r_hat:(b + 1) * r_hat] = M @ Rb
    dec = torch.zeros(d, c * r_hat)
    for i in range(d):
        dec[i, i % (c * r_hat)] = 1.0
    return dec @ core @ P


def mora_layer(d: int, k: int, r: int, mora_type: str, seed: int = 0) -> MoraLinear:
    torch.manual_seed(seed)
    m = build_method("mora", r=r, mora_type=mora_type, target_modules=["proj"])
    holder = nn.Sequential()
    holder.add_module("proj", nn.Linear(k, d))
    m.apply(holder)
    layer = holder.proj
    with torch.no_grad():
        layer.mora_M.normal_()
    return layer


SHAPES = [  # (d, k, r): divisible, non-divisible, k <= r̂, d > k + p, d < r̂
    (64, 64, 8), (80, 48, 4), (48, 80, 4), (12, 10, 8), (200, 24, 1), (6, 40, 2), (31, 17, 3),
]


@pytest.mark.parametrize("mora_type", MORA_TYPES)
@pytest.mark.parametrize("d,k,r", SHAPES)
def test_delta_weight_equals_paper_equation(mora_type, d, k, r):
    layer = mora_layer(d, k, r, mora_type)
    assert layer.r_hat == mora_rank(d, k, r, mora_type)
    expected = oracle_delta(layer.mora_M.detach(), d, k, mora_type)
    assert torch.allclose(layer.delta_weight(), expected, atol=1e-5)
    x = torch.randn(5, k)
    forward_delta = layer(x) - layer.base_layer(x)
    assert torch.allclose(forward_delta, x @ expected.T, atol=1e-4)


@pytest.mark.parametrize("d,k,r", SHAPES)
def test_contiguous_sharing_grouping_used_by_remora(d, k, r):
    layer = mora_layer(d, k, r, "sharing")
    layer.sharing_grouping = "contiguous"
    expected = oracle_delta(layer.mora_M.detach(), d, k, "sharing", grouping="contiguous")
    assert torch.allclose(layer.delta_weight(), expected, atol=1e-5)


def test_r_hat_formula_and_parity():
    assert mora_rank(4096, 4096, 8, "sharing") == 256
    assert mora_rank(64, 64, 8, "sharing") == 32
    assert mora_rank(80, 48, 4, "sharing") == math.isqrt(512) == 22
    assert mora_rank(80, 48, 5, "rotation") == 24  # ⌊√640⌋ = 25 → 24 (even, downward)
    assert mora_rank(80, 48, 5, "sharing") == 25


@pytest.mark.parametrize("mora_type", ["sharing", "decoupling", "rotation"])
def test_update_rank_exceeds_lora_rank(mora_type):
    r = 4
    layer = mora_layer(96, 96, r, mora_type)
    rank = torch.linalg.matrix_rank(layer.delta_weight()).item()
    assert rank > r, f"rank(ΔW)={rank} should exceed LoRA's r={r}"


@pytest.mark.parametrize("mora_type", MORA_TYPES)
def test_trainable_count_matches_lora_budget(mora_type):
    counts = {}
    for name in ("lora", "mora"):
        torch.manual_seed(0)
        kwargs = {"mora_type": mora_type} if name == "mora" else {}
        model = build_method(name, r=8, target_modules=LLAMA_TARGETS, **kwargs).apply(tiny_llama())
        counts[name] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0.9 * counts["lora"] <= counts["mora"] <= counts["lora"]


def test_zero_init_and_rotation_buffers_follow_dtype_moves():
    torch.manual_seed(0)
    m = build_method("mora", r=4, mora_type="rotation", target_modules=["proj"])
    holder = nn.Sequential()
    holder.add_module("proj", nn.Linear(40, 40))
    m.apply(holder)
    layer = holder.proj
    assert torch.count_nonzero(layer.mora_M) == 0
    names = {n for n, _ in layer.named_buffers()}
    assert {"rope_cos", "rope_sin", "pad_index"} <= names
    assert "rope_cos" not in layer.state_dict()  # derivable, so not persisted
    layer.double()
    assert layer.rope_cos.dtype == torch.float64 and layer.pad_index.dtype == torch.int64


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(1, 70), k=st.integers(1, 70), r=st.integers(1, 6),
    mora_type=st.sampled_from(MORA_TYPES),
)
def test_property_delta_weight_matches_oracle_and_forward(d, k, r, mora_type):
    r_hat = mora_rank(d, k, r, mora_type)
    if r_hat < (2 if mora_type == "rotation" else 1):
        with pytest.raises(ValueError, match="r_hat"):
            mora_layer(d, k, r, mora_type)
        return
    layer = mora_layer(d, k, r, mora_type)
    expected = oracle_delta(layer.mora_M.detach(), d, k, mora_type)
    assert torch.allclose(layer.delta_weight(), expected, atol=1e-4)
    x = torch.randn(3, k)
    assert torch.allclose(layer(x) - layer.base_layer(x), x @ expected.T, atol=1e-3)


@pytest.mark.parametrize("mora_type,grouping", [("truncation", "interleaved"), ("sharing", "interleaved"),
                                               ("sharing", "contiguous"), ("decoupling", "interleaved"),
                                               ("rotation", "interleaved")])
@pytest.mark.parametrize("d,k", [(24, 24), (30, 24), (24, 29), (7, 40), (50, 17), (40, 7), (64, 41), (96, 96)])
@pytest.mark.parametrize("train_bias,input_grad,dropout", [(False, True, 0.0), (True, False, 0.0), (True, True, 0.3)])
def test_fast_path_equals_the_composed_operators_in_values_and_gradients(mora_type, grouping, d, k, train_bias,
                                                                         input_grad, dropout):
    """Every operator as one node (methods/fast/mora.py: the adjoints written out, no padded or tiled copies;
    truncation and sharing with dropout: the operators in place; decoupling and rotation with dropout: composed);
    the oracle is y = W x + b + f_decomp(M f_comp(dropout(x))) through the generic operators (compress/decompress),
    every gradient included."""
    torch.manual_seed(0)
    layer = MoraLinear(nn.Linear(k, d), mora_rank(d, k, 2, mora_type), mora_type, dropout=dropout).train()
    layer.sharing_grouping = grouping  # ReMoRA's restarts alternate the two
    layer.base_layer.bias.requires_grad_(train_bias)
    with torch.no_grad():
        layer.mora_M.normal_()
    x = torch.randn(3, 5, k, requires_grad=input_grad)
    blockwise = mora_type in ("decoupling", "rotation")  # one node at any k; the composed path with dropout
    assert layer._fast_path(x) == (dropout == 0 if blockwise else k >= layer.r_hat)
    torch.manual_seed(1)
    fast = layer(x)
    torch.manual_seed(1)  # the same dropout mask
    x_adapter = torch.nn.functional.dropout(x, dropout, training=True) if dropout else x
    composed = layer.base_layer(x) + layer.decompress(layer.compress(x_adapter) @ layer.mora_M.T)
    assert torch.allclose(fast, composed, atol=1e-5)
    upstream = torch.randn_like(fast)
    leaves = [t for t in (x, layer.mora_M, layer.base_layer.bias) if t.requires_grad]
    for got, want in zip(torch.autograd.grad(fast, leaves, upstream), torch.autograd.grad(composed, leaves, upstream)):
        assert torch.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("g", [1, 2, 3, 4, 10])
def test_repeated_add_is_bitwise_the_repeated_columns_added(g):
    """The contiguous grouping's decompression (and its compression's adjoint): strided adds up to STRIDED_REPEATS
    repeats, one broadcast add beyond; either way each output is out + h[i // g], one rounding, as written out."""
    from methods.fast.mora import _add_repeated_

    generator = torch.Generator().manual_seed(g)
    out = torch.randn(37, 5 * g + 2, generator=generator)
    h = torch.randn(37, 9, generator=generator)[:, :5]  # a column slice, as the callers pass
    want = out.clone()
    want[:, : 5 * g] += h.repeat_interleave(g, dim=1)
    _add_repeated_(out, h, g)
    assert torch.equal(out, want)
