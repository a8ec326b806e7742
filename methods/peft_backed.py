"""Baselines whose math is peft's: the layers, the forward and the merge come from ``peft.get_peft_model``, so the
model these methods return is a ``PeftModel`` (the suite's own methods return the plain model with wrapped layers).

* **dora** — weight-decomposed LoRA (Liu et al., ICML 2024, arXiv 2402.09353): ``LoraConfig(use_dora=True)``.
* **adalora** — AdaLoRA (Zhang et al., ICLR 2023, arXiv 2303.10512): SVD-form adapters P·Λ·Q whose ranks a
  sensitivity-based allocator prunes from ``r`` to ``r × budget`` on average, with P, Q's orthogonal regulariser
  (weight 0.5) added through the suite's regulariser hook rather than inside peft's forward, so the logged task
  loss stays comparable across methods and choice tasks (scored without labels) get it too. The SaLoRA paper compares at its own setting: r 8, budget ratio b 0.5; the
  pruning window follows SaLoRA's gate window (``tinit`` / ``tfinal`` from t_start / t_end).
* **prefix** — prefix-tuning (Li & Liang, 2021): trained key/value prefixes of ``num_virtual_tokens`` per layer;
  on encoders the suite's own (``methods/encoder_prefix.py``), as peft's prefixes cannot reach them on transformers 5.
* **prompt** — prompt tuning (Lester et al., 2021): ``num_virtual_tokens`` trained input embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import AdapterMethod, orthogonality_gaps, require
from .cost import ModelShape, PerfVariant, low_rank_macs, orthogonal_regulariser_macs


def peft_task_type(model: nn.Module) -> str:
    return "SEQ_CLS" if type(model).__name__.endswith("ForSequenceClassification") else "CAUSAL_LM"


class PeftBacked(AdapterMethod):
    """apply = get_peft_model(model, self.peft_config(task type)), DoRA's and AdaLoRA's objects then doing their
    per-step work on the fast paths (``methods/fast/peft.py``); merge = peft's merge_and_unload."""

    final_state_keys = ("lora_",)

    def peft_config(self, task_type: str):
        raise NotImplementedError

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        from .fast import peft as fast_peft

        model = get_peft_model(model, self.peft_config(peft_task_type(model)))
        fast_peft.install(model)  # the same numbers as peft's classes compute (tests/test_peft_fused.py)
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        if not self.mergeable:
            raise ValueError(f"{self.name}: not mergeable (virtual tokens are not a weight); export the peft adapter instead")
        return model.merge_and_unload()

    def _modules_to_save(self) -> list[str] | None:
        return self.modules_to_save or None


class DoRA(PeftBacked):
    name = "dora"
    label = "DoRA"

    def peft_config(self, task_type: str):
        from peft import LoraConfig

        return LoraConfig(task_type=task_type, r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, use_rslora=self.use_rslora, use_dora=True,
                          modules_to_save=self._modules_to_save(), bias=self.bias)

    def activation_bytes(self, fan_in: int, fan_out: int, dtype_bytes: int) -> float:
        """LoRA's, plus the outputs the magnitude's scaling multiplies: the LoRA output, and with dropout the frozen
        product of the dropped input too (peft recomputes it on that input)."""
        outputs = 2 if self.dropout else 1
        return super().activation_bytes(fan_in, fan_out, dtype_bytes) + outputs * fan_out * dtype_bytes

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """LoRA's products plus the column norm of W + s·BA once a step (d·k·r, detached as in peft)."""
        targets = shape.targets(self.target_modules)
        return float(low_rank_macs(targets, self.r) + sum(t.d * t.k * self.r for t in targets) / tokens)


class AdaLoRA(PeftBacked):
    name = "adalora"
    label = "AdaLoRA"

    PLACEHOLDER_STEPS = 1000  # peft wants a total at construction; the real one arrives in on_train_begin

    def __init__(self, *args, budget: float = 0.5, total_step: int | None = None, t_start: float = 0.1, t_end: float = 0.4,
                 delta_t: int = 1, orth_reg_weight: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        require(isinstance(budget, (int, float)) and 0 < budget <= 1, self.name, "budget", budget,
                "0 < budget <= 1 (kept share of the initial rank r)")
        require(total_step is None or (isinstance(total_step, int) and total_step > 0), self.name, "total_step",
                total_step, "an integer >= 1, or null for the run's total steps (known when training starts)")
        require(isinstance(t_start, (int, float)) and isinstance(t_end, (int, float)) and 0 <= t_start < t_end <= 1,
                self.name, "t_start/t_end", (t_start, t_end), "0 <= t_start < t_end <= 1 (fractions of training)")
        require(isinstance(delta_t, int) and delta_t >= 1, self.name, "delta_t", delta_t, "an integer >= 1")
        require(isinstance(orth_reg_weight, (int, float)) and orth_reg_weight >= 0, self.name, "orth_reg_weight",
                orth_reg_weight, "a number >= 0")
        self.budget, self.total_step, self.delta_t = float(budget), total_step, delta_t
        self.t_start, self.t_end, self.orth_reg_weight = float(t_start), float(t_end), float(orth_reg_weight)
        self._rank_pattern: dict | None = None

    @property
    def target_r(self) -> int:
        return max(1, round(self.r * self.budget))

    def schedule(self, total: int) -> dict[str, int]:
        """peft's phases from the fractions: tinit steps of warm-up, pruning until t_end, tfinal steps fixed."""
        return {"total_step": total, "tinit": round(self.t_start * total), "tfinal": round((1 - self.t_end) * total)}

    def peft_config(self, task_type: str):
        from peft import AdaLoraConfig

        return AdaLoraConfig(task_type=task_type, init_r=self.r, target_r=self.target_r, lora_alpha=self.alpha,
                             lora_dropout=self.dropout, target_modules=self.target_modules, deltaT=self.delta_t,
                             orth_reg_weight=0.0, modules_to_save=self._modules_to_save(), bias=self.bias,
                             **self.schedule(self.total_step or self.PLACEHOLDER_STEPS))

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        """An epochs-based run knows its steps only now: the allocator reads the same config object, so set it here."""
        if self.total_step is None:
            for key, value in self.schedule(total_steps).items():
                setattr(model.peft_config["default"], key, value)

    def regularization_loss(self, model: nn.Module, progress: float) -> torch.Tensor | None:
        """peft's AdaLoRA term: the mean over P and Q matrices of ‖PᵀP − I‖_F and ‖QQᵀ − I‖_F, times the weight."""
        if not self.orth_reg_weight:
            return None
        # P (lora_A, rows orthonormal) and Q (lora_B, columns orthonormal): ‖PPᵀ − I‖_F, ‖QᵀQ − I‖_F
        factors = [param if "lora_A" in name else param.T for name, param in model.named_parameters()
                   if param.requires_grad and ("lora_A" in name or "lora_B" in name)]
        return self.orth_reg_weight * orthogonality_gaps(factors, squared=False).mean() if factors else None

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        """The allocator reads the gradients: after the optimizer step, before they are zeroed (peft's contract).

        peft keeps the kept ranks in ``config.rank_pattern`` and truncates every saved adapter to them, so a
        checkpoint no longer fits the full-rank model a resumed run builds (and loses the masked components the
        uninterrupted run still carries). Between steps the pattern lives here, in the method state, and the
        config holds None: checkpoints stay full-size (pruned components masked to zero) and resume exactly."""
        config = model.peft_config["default"]
        config.rank_pattern = self._rank_pattern
        model.base_model.update_and_allocate(step)
        self._rank_pattern, config.rank_pattern = config.rank_pattern, None

    def log_stats(self, model: nn.Module) -> dict[str, float]:
        kept = [int((module.lora_E["default"] != 0).sum()) for module in model.modules()
                if "default" in getattr(module, "lora_E", {})]
        return {"mean_rank": sum(kept) / len(kept)} if kept else {}

    def state_dict(self, model: nn.Module | None = None) -> dict[str, Any]:
        """The rank allocator's sensitivity averages: without them a resumed run would allocate differently."""
        allocator = getattr(getattr(model, "base_model", None), "rankallocator", None)
        if allocator is None:
            return {}
        state: dict[str, Any] = {key: {n: t.detach().cpu().clone() for n, t in getattr(allocator, key).items()}
                                 for key in ("ipt", "exp_avg_ipt", "exp_avg_unc")}
        return {**state, "rank_pattern": self._rank_pattern}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module | None = None) -> None:
        allocator = getattr(getattr(model, "base_model", None), "rankallocator", None)
        if allocator is None or not state:
            return
        state = dict(state)
        self._rank_pattern = state.pop("rank_pattern", None)
        for key, tensors in state.items():
            getattr(allocator, key).clear()
            getattr(allocator, key).update({n: t.to(model.device) for n, t in tensors.items()})

    def hparams(self) -> dict:
        return {**super().hparams(), "budget": self.budget, "target_r": self.target_r, "t_start": self.t_start,
                "t_end": self.t_end, "orth_reg_weight": self.orth_reg_weight}

    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        return [PerfVariant("adalora (in window)", progress=0.25)]  # its allocator prunes between 0.1 and 0.4

    @classmethod
    def perf_kwargs(cls, epoch_steps: int, restart_every: int) -> dict[str, Any]:
        return {"total_step": epoch_steps}

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """LoRA's products at the initial rank r plus P's and Q's orthogonal regulariser."""
        targets = shape.targets(self.target_modules)
        return float(low_rank_macs(targets, self.r) + orthogonal_regulariser_macs(targets, self.r, tokens))


class VirtualTokens(PeftBacked):
    """Prefix- and prompt-tuning: ``num_virtual_tokens`` trained positions; no rank, nothing to merge."""

    low_rank_family = False
    mergeable = False
    rankless = True

    def __init__(self, *args, num_virtual_tokens: int = 20, **kwargs):
        super().__init__(*args, **kwargs)
        require(isinstance(num_virtual_tokens, int) and not isinstance(num_virtual_tokens, bool) and num_virtual_tokens > 0,
                self.name, "num_virtual_tokens", num_virtual_tokens, "an integer >= 1")
        self.num_virtual_tokens = num_virtual_tokens

    def hparams(self) -> dict:
        return {"num_virtual_tokens": self.num_virtual_tokens}


class PrefixTuning(VirtualTokens):
    """peft's prefix-tuning on decoders; on encoders, which transformers 5 no longer lets peft reach (no past key
    values), the same parameterisation in ``methods/encoder_prefix.py``."""

    name = "prefix"
    label = "Prefix"
    # Transformers' checkpointed layers drop the cache, while the mask still counts it: a size mismatch mid-step
    # (peft refuses the pair too, peft#869, #2191).
    no_checkpointing_because = "its virtual tokens are a key/value cache, which checkpointed layers drop"

    def apply(self, model: nn.Module) -> nn.Module:
        if peft_task_type(model) == "SEQ_CLS" and not _takes_past_key_values(model):
            from .encoder_prefix import add_encoder_prefixes

            for param in model.parameters():
                param.requires_grad_(False)
            add_encoder_prefixes(model, self.num_virtual_tokens)
            self._unfreeze_modules_to_save(model)
            return model
        return super().apply(model)

    def peft_config(self, task_type: str):
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=self.num_virtual_tokens,
                                  modules_to_save=self._modules_to_save())

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """P more keys and values per layer: 3·2·P·heads·head_dim."""
        return float(shape.layers * 3 * 2 * self.num_virtual_tokens * shape.attention_width)


def _takes_past_key_values(model: nn.Module) -> bool:
    """peft's test for its prefix path: the model's forward or its backbone's takes ``past_key_values``."""
    import inspect

    backbone = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return any("past_key_values" in inspect.signature(m.forward).parameters for m in (model, backbone))


class PromptTuning(VirtualTokens):
    name = "prompt"
    label = "Prompt"

    def peft_config(self, task_type: str):
        from peft import PromptTuningConfig

        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=self.num_virtual_tokens,
                                  modules_to_save=self._modules_to_save())

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """Every sequence P tokens longer: the whole step at L + P, per token of the L the batch holds."""
        length = seq_len + self.num_virtual_tokens
        return 2 * shape.forward_macs(length) * length / seq_len - 2 * shape.forward_macs(seq_len)
