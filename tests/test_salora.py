"""SaLoRA: Hard-Concrete gates, orthogonal regulariser, density and the Lagrangian schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from methods import build_method
from methods.salora import SaLoRA

TAU, GAMMA, ZETA = 1.0, -0.1, 1.1


def two_layer_model(d=24, k=16) -> nn.Module:
    model = nn.Sequential()
    model.add_module("up", nn.Linear(k, d))
    model.add_module("down", nn.Linear(d, k))
    return model


def salora(**kw) -> tuple[SaLoRA, nn.Module]:
    torch.manual_seed(0)
    m = build_method("salora", r=6, alpha=12, target_modules=["up", "down"], **kw)
    return m, m.apply(two_layer_model())


def test_monte_carlo_keep_probability_matches_closed_form():
    m, model = salora()
    layer = model.up
    with torch.no_grad():
        layer.gate_log_alpha.copy_(torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0, 4.0]))
    n = 100_000
    layer.gate_noise = torch.rand(n, 1, generator=torch.Generator().manual_seed(0)).clamp(1e-6, 1 - 1e-6).expand(n, 6)
    layer.train()
    layer.gate_mode = "stochastic"
    g = layer.gate().detach()
    assert g.min() >= 0 and g.max() <= 1 and ((g > 0) & (g < 1)).any()
    empirical = (g > 0).float().mean(0)
    closed = torch.sigmoid(layer.gate_log_alpha.detach() - TAU * math.log(-GAMMA / ZETA))
    sigma = (closed * (1 - closed) / n).sqrt()
    assert ((empirical - closed).abs() <= 3 * sigma + 1e-9).all(), (empirical, closed)
    assert torch.isclose(layer.expected_l0(), closed.sum())


def test_gate_samples_follow_the_hard_concrete_equation():
    m, model = salora()
    layer = model.up
    u = torch.tensor([0.01, 0.2, 0.5, 0.7, 0.9, 0.99])
    with torch.no_grad():
        layer.gate_log_alpha.copy_(torch.tensor([0.3, -0.2, 1.0, -2.0, 0.0, 0.7]))
    layer.gate_noise = u
    layer.train()
    layer.gate_mode = "stochastic"
    s = torch.sigmoid((torch.log(u / (1 - u)) + layer.gate_log_alpha.detach()) / TAU) * (ZETA - GAMMA) + GAMMA
    assert torch.allclose(layer.gate().detach(), s.clamp(0, 1))
    z_hat = (torch.sigmoid(layer.gate_log_alpha.detach()) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)
    layer.eval()
    assert torch.allclose(layer.gate().detach(), z_hat)


def test_forward_and_merge_are_B_diag_g_A_written_out():
    m, model = salora()
    layer = model.up
    with torch.no_grad():
        layer.lora_B.normal_()
        layer.gate_log_alpha.copy_(torch.tensor([-5.0, -0.5, 0.0, 1.0, 3.0, 0.2]))
    layer.eval()
    # Before the window opens training runs with g ≡ 1, so eval and merge use no gate either.
    assert torch.allclose(layer.delta_weight(), 2.0 * layer.lora_B.detach() @ layer.lora_A.detach(), atol=1e-6)
    layer.gate_mode = "frozen"  # after the window: ẑ
    z_hat = (torch.sigmoid(layer.gate_log_alpha.detach()) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)
    dense = 2.0 * layer.lora_B.detach() @ torch.diag(z_hat) @ layer.lora_A.detach()
    assert torch.allclose(layer.delta_weight(), dense, atol=1e-6)
    x = torch.randn(4, 16)
    assert torch.allclose(layer(x) - layer.base_layer(x), x @ dense.T, atol=1e-5)


def test_orthonormal_factors_give_zero_regulariser_and_penalty_written_out():
    m, model = salora(beta=0.1)
    with torch.no_grad():
        for layer in (model.up, model.down):
            q_in, _ = torch.linalg.qr(torch.randn(layer.in_features, 6))
            q_out, _ = torch.linalg.qr(torch.randn(layer.out_features, 6))
            layer.lora_A.copy_(q_in.T)
            layer.lora_B.copy_(q_out)
    assert m.regularization_loss(model, progress=0.0).item() < 1e-9
    with torch.no_grad():
        for layer in (model.up, model.down):
            layer.lora_A.normal_()
            layer.lora_B.normal_()
    expected = 0.1 * sum(
        ((l.lora_B.T @ l.lora_B - torch.eye(6)) ** 2).sum() + ((l.lora_A @ l.lora_A.T - torch.eye(6)) ** 2).sum()
        for l in (model.up, model.down)
    )
    assert torch.isclose(m.regularization_loss(model, progress=0.0), expected.detach())


def test_density_is_the_weighted_expected_l0():
    m, model = salora()
    with torch.no_grad():
        model.up.gate_log_alpha.copy_(torch.linspace(-4, 4, 6))
        model.down.gate_log_alpha.fill_(-1.0)
    keep = lambda la: torch.sigmoid(la - TAU * math.log(-GAMMA / ZETA)).sum()
    num = keep(model.up.gate_log_alpha) * (16 + 24) + keep(model.down.gate_log_alpha) * (24 + 16)
    den = 6 * (16 + 24) + 6 * (24 + 16)
    assert torch.isclose(m.density(model), (num / den).detach())
    assert 0 <= float(m.density(model)) <= 1


def test_one_noise_draw_per_step_equals_a_draw_per_layer():
    """before_step draws every layer's gate noise at once; the numbers are those of each layer drawing in turn."""
    m, model = salora()
    torch.manual_seed(3)
    m.before_step(model, 10, 0.2)   # inside the window: stochastic gates
    batched = [model.up.gate_noise.clone(), model.down.gate_noise.clone()]
    torch.manual_seed(3)
    for layer in (model.up, model.down):
        layer.resample_gate_noise()
    assert all(torch.equal(b, layer.gate_noise) for b, layer in zip(batched, (model.up, model.down)))
    assert model.up.gate_mode == model.down.gate_mode == "stochastic"


def run_step(m: SaLoRA, model: nn.Module, step: int, total: int) -> None:
    progress = step / total
    model.train()
    m.before_step(model, step, progress)
    out = model(torch.randn(8, 16)).pow(2).mean()
    loss = out + m.regularization_loss(model, progress)
    loss.backward()
    m.lagrangian_step(model, progress)
    for p in m.trainable_parameters(model):
        p.grad = None


def test_lambda_grows_while_density_above_target_and_gates_move_only_in_window():
    m, model = salora(target_density=0.3, t_start=0.2, t_end=0.6, lr_constraint=0.05)
    with torch.no_grad():  # a trained-looking B, so the task loss reaches the gates too
        model.up.lora_B.normal_()
        model.down.lora_B.normal_()
    total = 20
    history = []
    for step in range(total):
        before = [p.detach().clone() for p in m.gate_parameters(model)]
        run_step(m, model, step, total)
        after = m.gate_parameters(model)
        moved = any(not torch.equal(b, a) for b, a in zip(before, after))
        history.append((step / total, float(m.lagrange_lambda), float(m.density(model)), moved))
    for progress, lam, density, moved in history:
        assert moved == (0.2 <= progress < 0.6), (progress, moved)
    lambdas = [lam for p, lam, d, _ in history if 0.2 <= p < 0.6]
    assert lambdas[0] > 0 and all(b > a for a, b in zip(lambdas, lambdas[1:]))  # C > b all along
    assert all(d > 0.3 for *_, d, _ in history)
    frozen = [lam for p, lam, *_ in history if p >= 0.6]
    assert len(set(frozen)) == 1  # λ frozen after the window
    assert m.gate_mode(0.0) == "dense" and m.gate_mode(0.3) == "stochastic" and m.gate_mode(0.9) == "frozen"


def test_gates_are_identity_before_the_window():
    m, model = salora()
    with torch.no_grad():
        model.up.lora_B.normal_()
        model.up.gate_log_alpha.fill_(-10.0)  # ẑ = 0: would switch the adapter off if used
    m.before_step(model, 0, progress=0.0)
    model.train()
    x = torch.randn(3, 16)
    full = 2.0 * model.up.lora_B.detach() @ model.up.lora_A.detach()
    assert torch.allclose(model.up(x) - model.up.base_layer(x), x @ full.T, atol=1e-5)


def test_rank_pattern_counts_components_with_positive_z_hat():
    m, model = salora()
    with torch.no_grad():
        # ẑ = clamp(1.2σ(l) − 0.1): zero iff σ(l) ≤ 1/12, i.e. l ≤ −log(11) ≈ −2.398
        model.up.gate_log_alpha.copy_(torch.tensor([-5.0, -2.5, -2.3, 0.0, 1.0, 5.0]))
        model.down.gate_log_alpha.fill_(-3.0)
    assert m.rank_pattern(model) == {"up": 6, "down": 6}  # gates not engaged yet: every component is used
    m.before_step(model, 0, progress=0.95)                  # after the window: ẑ decides
    assert m.rank_pattern(model) == {"up": 4, "down": 0}
