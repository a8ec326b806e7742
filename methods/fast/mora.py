"""MoRA's operators as one autograd node each, for n layers that read one input x, named as the method names them
(methods/mora.py): ``mora_type`` and, for sharing, its ``grouping``. Truncation and sharing (both groupings),
MoraGroupFunction:

    y_i = x·W_iᵀ + b_i + decompress(compress(x)·M_iᵀ),

where (k ≥ r̂) compress keeps the first r̂ inputs (truncation) or sums the padded inputs (padded position t reads
input t mod k) by t mod r̂ (sharing, interleaved) or in runs of ⌈k/r̂⌉ (sharing, contiguous: ReMoRA's other
grouping), and decompress adds output j of M's into y at j, at every j mod r̂, or over a run of ⌈d/r̂⌉ outputs.

Composed from tensor ops, autograd pays for the slicing: each slice of x's compression and each in-place add of
the decompression comes back in the backward as a zero-filled full-size gradient, copied and summed. Here the
backward writes the two adjoints directly: decompress's (a block sum of the output gradient, T × r̂) and
compress's (the T × r̂ gradient added into the input gradient's blocks in place), beside the frozen layers' input
gradient, accumulated by the GEMMs into one buffer. The math is unchanged: the tests hold this node against the
composed operators (methods/mora.py), values and gradients, and against the dense ΔW.

Decoupling and rotation, MoraBlockFunction: M on each r̂-block of the wrap-around-padded input (rotation: each
block first rotated RoPE-style), the blocks' outputs concatenated and tiled to d. One product over all T·⌈k/r̂⌉
blocks; the rotation is one swapped copy and one multiply-add (the signs on the small sin table), the outputs added
into the frozen layer's in place, and the backward writes the adjoints (tiles summed, the rotation transposed,
the padding folded back into the input gradient) instead of autograd's full-size zero-filled slices.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def _run_sums(x2: torch.Tensor, runs: int, c: int) -> torch.Tensor:
    """T × (≥ runs·c) → T × runs: the sum of each run of c consecutive columns. Written as a product with a column
    of ones: torch's sum over a short innermost dimension is a scalar loop on CPU, slower than this GEMM."""
    if c == 1:
        return x2[:, :runs]
    return (x2[:, : runs * c].reshape(-1, c) @ x2.new_ones(c, 1)).view(x2.shape[0], runs)


STRIDED_REPEATS = 3  # up to this many repeats, strided adds; beyond, one broadcast add (see _add_repeated_)


def _add_repeated_(out: torch.Tensor, h: torch.Tensor, g: int) -> None:
    """out[..., : n·g] += each of h's n columns repeated g times: the same sums however they are laid out. Each
    strided add reads and writes every cache line of the output, so g of them cost g passes; a broadcast over the
    short innermost dimension (unflatten(...).add_(h.unsqueeze(-1))) costs one, at a slower pace per element, so
    on CPU the strided adds win for a few repeats (up to STRIDED_REPEATS) and the broadcast beyond."""
    n = h.shape[-1]
    if g <= STRIDED_REPEATS:
        for j in range(g):
            out[..., j: n * g: g] += h
        return
    out[..., : n * g].unflatten(-1, (n, g)).add_(h.unsqueeze(-1))


def _block_sums(x2: torch.Tensor, r_hat: int, blocks: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """T × (≥ blocks·r̂) → T × r̂ (into ``out`` if given): the sum of the first ``blocks`` consecutive r̂-wide column
    blocks. Up to four blocks as strided adds, faster on CPU than torch's sum over the blocks' dimension, which
    overtakes them for more blocks."""
    if blocks > 4:
        summed = x2[:, : blocks * r_hat].unflatten(-1, (blocks, r_hat)).sum(dim=-2)
        return summed if out is None else out.copy_(summed)
    if blocks == 1:
        return x2[:, :r_hat].clone() if out is None else out.copy_(x2[:, :r_hat])
    out = torch.add(x2[:, :r_hat], x2[:, r_hat: 2 * r_hat], out=out)
    for j in range(2, blocks):
        out += x2[:, j * r_hat: (j + 1) * r_hat]
    return out


def _wrapped_tail(x2: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Padded positions start..stop-1 (start ≤ k, stop ≤ 2k) as columns: x's tail, then its head again."""
    k = x2.shape[1]
    return torch.cat([x2[:, start:], x2[:, : stop - k]], dim=1) if stop > k else x2[:, start:stop]


def compress(x2: torch.Tensor, r_hat: int, mora_type: str, grouping: str) -> torch.Tensor:
    """T × k → T × r̂. truncation: the first r̂ inputs; sharing, interleaved: the sum of the padded inputs by t mod r̂;
    sharing, contiguous: the sum of each run of c = ⌈k/r̂⌉ consecutive padded inputs."""
    k = x2.shape[1]
    if mora_type == "truncation":
        return x2[:, :r_hat]
    if grouping == "interleaved":
        full = k // r_hat * r_hat
        summed = _block_sums(x2, r_hat, full // r_hat)
        tail = k - full
        if tail:  # the last block: the tail of x, then the wrap-around padding
            summed[:, :tail] += x2[:, full:]
            summed[:, tail:] += x2[:, : r_hat - tail]
        return summed
    c = -(-k // r_hat)
    inside = k // c  # runs that read no padding
    summed = x2.new_empty(x2.shape[0], r_hat)
    summed[:, :inside] = _run_sums(x2, inside, c)
    if inside < r_hat:  # r̂·c < k + r̂ ≤ 2k: the padding wraps around x once at most
        summed[:, inside:] = _run_sums(_wrapped_tail(x2, inside * c, r_hat * c), r_hat - inside, c)
    return summed


def compress_adjoint_(grad_x: torch.Tensor, grad_c: torch.Tensor, r_hat: int, mora_type: str, grouping: str) -> None:
    """grad_x += compressᵀ(grad_c), in place."""
    k = grad_x.shape[1]
    if mora_type == "truncation":
        grad_x[:, :r_hat] += grad_c
        return
    if grouping == "interleaved":
        full = k // r_hat * r_hat
        grad_x[:, :full].unflatten(-1, (full // r_hat, r_hat)).add_(grad_c.unsqueeze(-2))
        tail = k - full
        if tail:
            grad_x[:, full:] += grad_c[:, :tail]
            grad_x[:, : r_hat - tail] += grad_c[:, tail:]
        return
    c = -(-k // r_hat)
    inside = k // c
    _add_repeated_(grad_x, grad_c[:, :inside], c)
    if inside < r_hat:  # the wrapped runs: x's tail, then its head again
        spread = grad_c[:, inside:].repeat_interleave(c, dim=1)
        tail = k - inside * c
        grad_x[:, inside * c:] += spread[:, :tail]
        if spread.shape[1] > tail:
            grad_x[:, : spread.shape[1] - tail] += spread[:, tail:]


def add_decompressed_(out: torch.Tensor, h: torch.Tensor, mora_type: str, grouping: str) -> torch.Tensor:
    """out += decompress(h), in place (the last dims: d outputs, r̂ of h). truncation: output i reads h[i]; sharing,
    interleaved: h[i mod r̂] (tiling); sharing, contiguous: h[i // g], each of h's outputs repeated g = ⌈d/r̂⌉ times."""
    d, r_hat = out.shape[-1], h.shape[-1]
    if mora_type == "truncation" or d <= r_hat:
        out[..., : min(d, r_hat)] += h[..., : min(d, r_hat)]
        return out
    if grouping == "interleaved":
        whole = d // r_hat * r_hat
        out[..., :whole].unflatten(-1, (whole // r_hat, r_hat)).add_(h.unsqueeze(-2))
        if whole < d:
            out[..., whole:] += h[..., : d - whole]
        return out
    g = -(-d // r_hat)
    runs = d // g
    _add_repeated_(out, h[..., :runs], g)
    if runs * g < d:
        out[..., runs * g:] += h[..., runs: runs + 1]
    return out


def decompress_adjoint(g2: torch.Tensor, r_hat: int, mora_type: str, grouping: str, out: torch.Tensor) -> None:
    """out (T × r̂) = decompressᵀ(g2), g2 the T × d output gradient."""
    d = g2.shape[1]
    if mora_type == "truncation" or d <= r_hat:
        out[:, : min(d, r_hat)] = g2[:, : min(d, r_hat)]
        out[:, min(d, r_hat):] = 0
        return
    if grouping == "interleaved":
        whole = d // r_hat * r_hat
        _block_sums(g2, r_hat, whole // r_hat, out=out)
        if whole < d:
            out[:, : d - whole] += g2[:, whole:]
        return
    g = -(-d // r_hat)
    runs = d // g
    out[:, :runs] = _run_sums(g2, runs, g)
    out[:, runs:] = 0
    if runs * g < d:
        out[:, runs] = g2[:, runs * g:].sum(dim=-1)


def _frozen_outputs(x2: torch.Tensor, members: Sequence, add_adapter_: Callable) -> list[torch.Tensor]:
    """Each layer's frozen output x·W_iᵀ + b_i (T × d_i; members: W_1, b_1, W_2, b_2, …), then
    ``add_adapter_(i, out)`` adds layer i's adapter into it in place."""
    outs = []
    for i in range(len(members) // 2):
        weight, bias = members[2 * i: 2 * i + 2]
        out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
        add_adapter_(i, out)
        outs.append(out)
    return outs


def _shared_backward(ctx, grad_outs: Sequence, c: torch.Tensor, M_cat: torch.Tensor, members: Sequence,
                     first_member: int, decompress_adjoint_: Callable):
    """The gradients both nodes share: the frozen layers' (every layer's input gradient accumulated into one buffer
    by the GEMMs, None when x needs none, and each bias's), h = c·M_catᵀ's and the M's. ``decompress_adjoint_(g2,
    out)`` writes a layer's decompression adjoint of its output gradient g2 into ``out``, its slice of h's
    gradient; ``first_member``: the index of W_1 among the node's inputs. Returns (grad_x, grad_M, grad_members,
    grad_h)."""
    r_hat = ctx.r_hat
    need_x, need_M = ctx.needs_input_grad[:2]
    need_members = ctx.needs_input_grad[first_member:]
    grad_h = c.new_empty(c.shape[0], M_cat.shape[0])
    grad_x = None
    grad_members: list[torch.Tensor | None] = []
    for i, grad_out in enumerate(grad_outs):
        weight = members[2 * i]
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        decompress_adjoint_(g2, grad_h[:, i * r_hat: (i + 1) * r_hat])
        if need_x:
            grad_x = g2 @ weight if grad_x is None else grad_x.addmm_(g2, weight)
        grad_members += [None, g2.sum(0) if need_members[2 * i + 1] else None]
    grad_M = grad_h.t() @ c if need_M else None
    return grad_x, grad_M, grad_members, grad_h


class MoraGroupFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, M_cat, r_hat: int, mora_type: str, grouping: str, *members):
        # members: (W_1, b_1, W_2, b_2, …); M_cat: the layers' M stacked by rows (n·r̂ × r̂)
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        c = compress(x2, r_hat, mora_type, grouping)
        h = c @ M_cat.t()
        outs = _frozen_outputs(
            x2, members, lambda i, out: add_decompressed_(out, h[:, i * r_hat: (i + 1) * r_hat], mora_type, grouping))
        ctx.save_for_backward(c, M_cat, *members)
        ctx.r_hat, ctx.operator, ctx.x_shape = r_hat, (mora_type, grouping), shape
        return tuple(out.view(*shape[:-1], out.shape[-1]) for out in outs)

    @staticmethod
    def backward(ctx, *grad_outs):
        c, M_cat, *members = ctx.saved_tensors
        r_hat, operator = ctx.r_hat, ctx.operator
        grad_x, grad_M, grad_members, grad_h = _shared_backward(
            ctx, grad_outs, c, M_cat, members, 5, lambda g2, out: decompress_adjoint(g2, r_hat, *operator, out))
        if ctx.needs_input_grad[0]:
            compress_adjoint_(grad_x, grad_h @ M_cat, r_hat, *operator)
            grad_x = grad_x.view(ctx.x_shape)
        return (grad_x, grad_M, None, None, None, *grad_members)


# --- decoupling and rotation: M on every r̂-block of the padded input --------------------------------------------
def _pad_blocks(x2: torch.Tensor, length: int) -> torch.Tensor:
    """T × k → T × length, padded position t reading input t mod k (x itself where length = k)."""
    k = x2.shape[1]
    if length == k:
        return x2
    return torch.cat([x2[:, : min(k, length - s)] for s in range(0, length, k)], dim=1)


def _unpad_add_(grad_x: torch.Tensor, grad_padded: torch.Tensor) -> None:
    """grad_x += the padding's adjoint of grad_padded: padded position t adds into input t mod k."""
    k, length = grad_x.shape[1], grad_padded.shape[1]
    for s in range(0, length, k):
        grad_x[:, : min(k, length - s)] += grad_padded[:, s: s + k]


def _swap_halves(v: torch.Tensor) -> torch.Tensor:
    half = v.shape[-1] // 2
    return torch.cat([v[..., half:], v[..., :half]], dim=-1)


def _rotate_blocks(blocks: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, adjoint: bool = False) -> torch.Tensor:
    """Each r̂-block rotated RoPE-style with rotate-half pairing (q, q + r̂/2): v·cos + rot(v)·sin with
    rot(v) = (−v[h:], v[:h]) = swap(v)·(−1, +1); adjoint: its transpose v·cos + rotᵀ(v·sin), rotᵀ(u) = (u[h:], −u[:h])
    = swap(u)·(+1, −1). blocks: T × n_blocks × r̂; cos, sin: n_blocks × r̂. The signs go on the small sin table, so
    the block-size work is one swapped copy and one multiply-add (faster on CPU than the negated copy or in-place
    multiply-adds on the halves)."""
    sign = torch.ones_like(cos)
    sign[:, : cos.shape[-1] // 2] = -1.0
    coefficient = _swap_halves(sin) * -sign if adjoint else sin * sign
    return torch.addcmul(blocks * cos, _swap_halves(blocks), coefficient)


def _tile_pieces(flat: torch.Tensor, blocks3: torch.Tensor):
    """The cyclic tiling of blocks3's flattened blocks (T × n_blocks × r̂, any strides) over flat's d columns, as
    (piece of flat, the matching piece of blocks3) view pairs: whole blocks as T × w × r̂, a cut block as T × p."""
    d, (n_blocks, r_hat) = flat.shape[1], blocks3.shape[1:]
    length = n_blocks * r_hat
    for s in range(0, d, length):
        part = min(length, d - s)
        whole = part // r_hat
        if whole:
            yield flat[:, s: s + whole * r_hat].view(-1, whole, r_hat), blocks3[:, :whole]
        if whole < n_blocks and part > whole * r_hat:
            yield flat[:, s + whole * r_hat: s + part], blocks3[:, whole, : part - whole * r_hat]


def _add_blocks_(out: torch.Tensor, h3: torch.Tensor) -> None:
    """out (T × d) += the flattened blocks of h3, tiled cyclically to d."""
    for piece, block in _tile_pieces(out, h3):
        piece += block


def _blocks_adjoint(g2: torch.Tensor, out3: torch.Tensor) -> None:
    """out3 (T × n_blocks × r̂) = the tiling's adjoint of g2 (T × d): the sum of g2's tiles."""
    out3.zero_()
    for piece, block in _tile_pieces(g2, out3):
        block += piece


class MoraBlockFunction(torch.autograd.Function):
    """y_i = x·W_iᵀ + b_i + tile(concat_b(M_i · rotate_b(pad(x)_b))): decoupling (no rotation) and rotation as one
    node, M applied to all T·n_blocks blocks as one product; the backward writes the adjoints (tiles summed, the
    rotation transposed, the padding folded back) into the frozen layers' input gradient."""

    @staticmethod
    def forward(ctx, x, M_cat, r_hat: int, n_blocks: int, cos, sin, *members):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        blocks = _pad_blocks(x2, n_blocks * r_hat).reshape(-1, n_blocks, r_hat)
        c = blocks if cos is None else _rotate_blocks(blocks, cos, sin)
        c2 = c.reshape(-1, r_hat)                                 # (T·n_blocks) × r̂
        h = c2 @ M_cat.t()                                        # (T·n_blocks) × (n·r̂)
        outs = _frozen_outputs(
            x2, members, lambda i, out: _add_blocks_(out, h[:, i * r_hat: (i + 1) * r_hat].view(-1, n_blocks, r_hat)))
        ctx.save_for_backward(c2, M_cat, cos, sin, *members)
        ctx.r_hat, ctx.n_blocks, ctx.x_shape = r_hat, n_blocks, shape
        return tuple(out.view(*shape[:-1], out.shape[-1]) for out in outs)

    @staticmethod
    def backward(ctx, *grad_outs):
        c2, M_cat, cos, sin, *members = ctx.saved_tensors
        r_hat, n_blocks = ctx.r_hat, ctx.n_blocks
        grad_x, grad_M, grad_members, grad_h = _shared_backward(
            ctx, grad_outs, c2, M_cat, members, 6, lambda g2, out: _blocks_adjoint(g2, out.view(-1, n_blocks, r_hat)))
        if ctx.needs_input_grad[0]:
            grad_c = (grad_h @ M_cat).view(-1, n_blocks, r_hat)
            grad_blocks = grad_c if cos is None else _rotate_blocks(grad_c, cos, sin, adjoint=True)
            _unpad_add_(grad_x, grad_blocks.view(grad_x.shape[0], -1))
            grad_x = grad_x.view(ctx.x_shape)
        return (grad_x, grad_M, None, None, None, None, *grad_members)


BLOCKWISE = ("decoupling", "rotation")


def mora_group(x: torch.Tensor, layers: Sequence) -> tuple[torch.Tensor, ...]:
    """Every layer's output on x (MoraLinear layers of one operator, grouping and r̂)."""
    first = layers[0]
    M_cat = first.mora_M if len(layers) == 1 else torch.cat([layer.mora_M for layer in layers])
    members = [t for layer in layers for t in (layer.base_layer.weight, layer.base_layer.bias)]
    if first.mora_type in BLOCKWISE:
        rotation = first.mora_type == "rotation"
        cos, sin = (first.rope_cos.to(x.dtype), first.rope_sin.to(x.dtype)) if rotation else (None, None)
        return MoraBlockFunction.apply(x, M_cat, first.r_hat, first.n_blocks, cos, sin, *members)
    return MoraGroupFunction.apply(x, M_cat, first.r_hat, first.mora_type, first.sharing_grouping, *members)
