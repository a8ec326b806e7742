"""SaLoRA (Hu et al., Mathematics 11(20) 4317): structure-aware LoRA, ΔW = s·B·diag(g)·A.

* Hard-Concrete L0 gate per rank component (Louizos et al.): with u ~ U(0, 1), one draw per training
  step shared across the batch, s = σ((log(u/(1−u)) + log θ)/τ)·(ζ−γ) + γ and g = clamp(s, 0, 1).
  Closed form E‖G‖₀ = Σ σ(log θ − τ·log(−γ/ζ)).
* Orthogonal regulariser ‖BᵀB − I‖²_F + ‖AAᵀ − I‖²_F summed over modules, weight β.
* Density C = Σ E‖G_i‖₀(d_i + k_i) / Σ (#A_i + #B_i) ∈ [0, 1] and the Lagrangian term λ(C − b)²;
  λ starts at 0 and is updated by gradient ascent (``maximize=True``).
* Gates and λ train only inside [t_start, t_end) (fractions of training). Before it g ≡ 1; after it
  the gates are frozen and deterministic. Eval and merge use ẑ = clamp(σ(log θ)(ζ−γ) + γ, 0, 1); a
  component is kept when ẑ > 0.

The gate parameters ``gate_log_alpha`` (log θ) are not in the main optimizer: the method steps them
and λ itself in ``lagrangian_step``, only inside the window.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from .base import orthogonality_gaps, require
from .cost import ModelShape, PerfVariant, low_rank_macs, orthogonal_regulariser_macs
from .lora import LoRA, LoraLinear

GATE_MODES = ("dense", "stochastic", "frozen")


def keep_probability(log_alpha: torch.Tensor, temperature: float, gamma: float, zeta: float) -> torch.Tensor:
    """P(g > 0) = σ(log θ − τ·log(−γ/ζ)) of each gate."""
    return torch.sigmoid(log_alpha - temperature * math.log(-gamma / zeta))


def uniform_noise(n: int, device: torch.device) -> torch.Tensor:
    """u ~ U(0, 1) kept off 0 and 1, where the Hard-Concrete logit log(u/(1−u)) is finite."""
    eps = 1e-6
    return torch.rand(n, device=device).clamp(eps, 1 - eps)


class SaloraLinear(LoraLinear):
    def __init__(self, base_layer: nn.Linear, r: int, scaling: float, dropout: float,
                 gate_init: float, temperature: float, gamma: float, zeta: float):
        super().__init__(base_layer, r, scaling, dropout)
        self.gate_log_alpha = nn.Parameter(torch.full((r,), float(gate_init), device=base_layer.weight.device))
        self.temperature, self.gamma, self.zeta = temperature, gamma, zeta
        self.gate_mode = "dense"
        self.gate_noise: torch.Tensor | None = None

    def resample_gate_noise(self) -> None:
        self.gate_noise = uniform_noise(self.r, self.gate_log_alpha.device)

    def deterministic_gate(self) -> torch.Tensor:
        """ẑ = clamp(σ(log θ)(ζ−γ)+γ, 0, 1), used in eval, after the window and when merging."""
        return (torch.sigmoid(self.gate_log_alpha) * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def stochastic_gate(self) -> torch.Tensor:
        if self.gate_noise is None:
            self.resample_gate_noise()
        u = self.gate_noise
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.gate_log_alpha) / self.temperature)
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def effective_gate(self) -> torch.Tensor | None:
        """What eval and merge use: none before the window opens (training ran with g ≡ 1 then), ẑ after."""
        return None if self.gate_mode == "dense" else self.deterministic_gate()

    def gate(self) -> torch.Tensor | None:
        if not self.training:
            return self.effective_gate()
        if self.gate_mode == "dense":
            return None
        if self.gate_mode == "stochastic":
            return self.stochastic_gate()
        return self.deterministic_gate().detach()

    def expected_l0(self) -> torch.Tensor:
        """E‖G‖₀ = Σ P(g > 0) = Σ σ(log θ − τ·log(−γ/ζ))."""
        return keep_probability(self.gate_log_alpha, self.temperature, self.gamma, self.zeta).sum()

    def delta_weight(self) -> torch.Tensor:
        g = self.effective_gate()
        B = self.lora_B.float() if g is None else self.lora_B.float() * g.float()
        return B @ self.lora_A.float() * self.scaling

    def kept_rank(self) -> int:
        g = self.effective_gate()
        return self.r if g is None else int((g > 0).sum())


class SaLoRA(LoRA):
    name = "salora"
    label = "SaLoRA"
    layer_class = SaloraLinear
    final_state_keys = ("lora_", "gate_log_alpha")

    def __init__(self, beta: float = 0.1, target_density: float = 0.5, lr_constraint: float = 0.01,
                 t_start: float = 0.1, t_end: float = 0.4, temperature: float = 1.0, gamma: float = -0.1,
                 zeta: float = 1.1, gate_init: float = 0.0, use_lagrangian: bool = True, **kwargs):
        super().__init__(**kwargs)
        require(isinstance(target_density, (int, float)) and 0 < target_density <= 1, self.name, "target_density", target_density, "0 < b <= 1")
        require(isinstance(beta, (int, float)) and beta >= 0, self.name, "beta", beta, "beta >= 0")
        require(isinstance(lr_constraint, (int, float)) and lr_constraint > 0, self.name, "lr_constraint", lr_constraint, "a learning rate > 0")
        require(isinstance(t_start, (int, float)) and 0 <= t_start < 1, self.name, "t_start", t_start, "0 <= t_start < t_end <= 1")
        require(isinstance(t_end, (int, float)) and t_start < t_end <= 1, self.name, "t_end", t_end, f"t_start={t_start} < t_end <= 1")
        require(temperature > 0, self.name, "temperature", temperature, "temperature > 0")
        require(gamma < 0, self.name, "gamma", gamma, "gamma < 0 (the stretch's left end)")
        require(zeta > 1, self.name, "zeta", zeta, "zeta > 1 (the stretch's right end)")
        self.beta, self.target_density, self.lr_constraint = float(beta), float(target_density), float(lr_constraint)
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.temperature, self.gamma, self.zeta, self.gate_init = float(temperature), float(gamma), float(zeta), float(gate_init)
        self.use_lagrangian = bool(use_lagrangian)  # False: the paper's λ = 0 ablation
        self.lagrange_lambda = nn.Parameter(torch.zeros(()))
        self._gate_optimizer: torch.optim.Optimizer | None = None
        self._lambda_optimizer = torch.optim.SGD([self.lagrange_lambda], lr=self.lr_constraint, maximize=True)

    def make_layer(self, name: str, base_layer: nn.Linear) -> SaloraLinear:
        return SaloraLinear(base_layer, self.r, self.scaling, self.dropout,
                            self.gate_init, self.temperature, self.gamma, self.zeta)

    # --- the schedule -------------------------------------------------------------------------------
    def gate_mode(self, progress: float) -> str:
        if progress < self.t_start:
            return "dense"
        return "stochastic" if progress < self.t_end else "frozen"

    def in_window(self, progress: float) -> bool:
        return self.gate_mode(progress) == "stochastic"

    def before_step(self, model: nn.Module, step: int, progress: float) -> None:
        mode = self.gate_mode(progress)
        layers = [layer for _, layer in self.adapted_layers(model)]
        for layer in layers:
            layer.gate_mode = mode
        if mode == "stochastic" and layers:
            # one draw for every layer: the same numbers as a draw per layer in turn, in two ops instead of 2n
            noise = uniform_noise(sum(layer.r for layer in layers), layers[0].gate_log_alpha.device)
            for layer, part in zip(layers, noise.split([layer.r for layer in layers])):
                layer.gate_noise = part

    # --- the regularisers ---------------------------------------------------------------------------
    def density(self, model: nn.Module) -> torch.Tensor:
        """C(Θ) = Σ E‖G_i‖₀ (d_i + k_i) / Σ r_i (d_i + k_i); differentiable in the gates."""
        layers = [layer for _, layer in self.adapted_layers(model)]
        # every layer's gates as one vector: a few ops instead of a handful per layer
        log_alpha = torch.cat([layer.gate_log_alpha for layer in layers])
        sizes = [float(layer.in_features + layer.out_features) for layer in layers for _ in range(layer.r)]
        weights = torch.tensor(sizes, dtype=log_alpha.dtype, device=log_alpha.device)
        keep = keep_probability(log_alpha, self.temperature, self.gamma, self.zeta)
        return (keep * weights).sum() / sum(sizes)

    def orthogonal_penalty(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ‖BᵀB − I‖²_F, Σ‖AAᵀ − I‖²_F) over the adapted modules."""
        layers = [layer for _, layer in self.adapted_layers(model)]
        return (orthogonality_gaps([layer.lora_B.T for layer in layers]).sum(),
                orthogonality_gaps([layer.lora_A for layer in layers]).sum())

    def regularization_loss(self, model: nn.Module, progress: float) -> torch.Tensor:
        gap_B, gap_A = self.orthogonal_penalty(model)
        loss = self.beta * (gap_B + gap_A)
        if self.use_lagrangian and self.in_window(progress):
            lam = self.lagrange_lambda.to(loss.device)
            loss = loss + lam * (self.density(model) - self.target_density) ** 2
        return loss

    # --- the constraint optimisation ----------------------------------------------------------------
    def gate_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [layer.gate_log_alpha for _, layer in self.adapted_layers(model)]

    def trainable_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        gates = {id(p) for p in self.gate_parameters(model)}
        return [p for p in model.parameters() if p.requires_grad and id(p) not in gates]

    def extra_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        if self._gate_optimizer is None:
            gates = self.gate_parameters(model)
            # one fused kernel for every layer's gates where torch has it (as the trainer's AdamW), not a loop per layer
            fused = bool(gates) and gates[0].device.type in ("cpu", "cuda")
            self._gate_optimizer = torch.optim.Adam(gates, lr=self.lr_constraint, fused=fused)
        return [self._gate_optimizer, self._lambda_optimizer]

    def before_optimizer_step(self, model: nn.Module, progress: float) -> None:
        self.lagrangian_step(model, progress)

    def lagrangian_step(self, model: nn.Module, progress: float) -> None:
        """After backward: gates descend and λ ascends, inside the window only; grads are cleared always."""
        gate_opt, lambda_opt = self.extra_optimizers(model)
        if self.in_window(progress):
            gate_opt.step()
            lambda_opt.step()
            with torch.no_grad():
                self.lagrange_lambda.clamp_(min=0.0)
        gate_opt.zero_grad(set_to_none=True)
        lambda_opt.zero_grad(set_to_none=True)

    # --- reporting ----------------------------------------------------------------------------------
    @classmethod
    def setting_label(cls, cfg: Mapping[str, Any]) -> str:
        """The target density and the gates' η_c and window: runs at two budgets or two gate settings never share
        a table row."""
        parts = [f"b {cfg['target_density']}"] if "target_density" in cfg else []
        if "lr_constraint" in cfg:
            parts.append(f"η_c {cfg['lr_constraint']}")
        if "t_start" in cfg and "t_end" in cfg:
            parts.append(f"window {float(cfg['t_start']):.0%}-{float(cfg['t_end']):.0%}")
        return ", ".join(parts)

    def rank_pattern(self, model: nn.Module) -> dict[str, int]:
        return {name: layer.kept_rank() for name, layer in self.adapted_layers(model)}

    def final_metrics(self, model: nn.Module) -> dict[str, Any]:
        return {"rank_pattern": self.rank_pattern(model), "density": float(self.density(model))}

    def lora_factors(self, layer: SaloraLinear) -> tuple[torch.Tensor, torch.Tensor]:
        """The components with ẑ > 0, ẑ folded into B (a module whose every component was pruned has rank 0)."""
        gate = layer.effective_gate()
        z = torch.ones(layer.r, device=layer.lora_B.device) if gate is None else gate.detach().float()
        kept = z > 0
        B = layer.scaling * layer.lora_B.detach().float()[:, kept] * z[kept]
        return B, layer.lora_A.detach().float()[kept]

    # --- cost -----------------------------------------------------------------------------------------
    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        """Inside the gate window (gates sampled, the Lagrangian step) and after it (gates frozen)."""
        return [PerfVariant("salora (in window)", progress=0.25, goals=(("vs_lora", 1.10, None),)),
                PerfVariant("salora (outside window)", progress=0.9, goals=(("vs_lora", 1.02, None),))]

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        targets = shape.targets(self.target_modules)
        return float(low_rank_macs(targets, self.r) + orthogonal_regulariser_macs(targets, self.r, tokens))

    @torch.no_grad()
    def log_stats(self, model: nn.Module) -> dict[str, float]:
        gap_B, gap_A = self.orthogonal_penalty(model)
        kept = self.rank_pattern(model)
        return {
            "density": float(self.density(model)),
            "lambda": self.lagrange_lambda.item(),
            "orth_B": float(gap_B),
            "orth_A": float(gap_A),
            "kept_rank_mean": sum(kept.values()) / max(len(kept), 1),
        }

    def state_dict(self, model: nn.Module | None = None) -> dict[str, Any]:
        state = {"lagrange_lambda": self.lagrange_lambda.item(), "lambda_optimizer": self._lambda_optimizer.state_dict()}
        if self._gate_optimizer is not None:
            state["gate_optimizer"] = self._gate_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], model: nn.Module | None = None) -> None:
        with torch.no_grad():
            self.lagrange_lambda.fill_(state["lagrange_lambda"])
        self._lambda_optimizer.load_state_dict(state["lambda_optimizer"])
        if "gate_optimizer" in state and model is not None:
            self.extra_optimizers(model)[0].load_state_dict(state["gate_optimizer"])

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "beta": self.beta, "target_density": self.target_density,
                "lr_constraint": self.lr_constraint, "t_start": self.t_start, "t_end": self.t_end,
                "temperature": self.temperature, "gamma": self.gamma, "zeta": self.zeta, "gate_init": self.gate_init,
                "use_lagrangian": self.use_lagrangian}

