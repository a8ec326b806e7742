"""Shared adapter machinery: wrapping nn.Linear layers, freezing, merging, target matching, validation.

Each method contributes an :class:`AdapterLinear` subclass (the per-layer math) and an
:class:`AdapterMethod` subclass (hyperparameters, validation, optional training hooks). The
bench reaches a method only through the public API below and the hook methods on
:class:`AdapterMethod` — training, export, resume, cost and labels —, never by its name; every hook
has a default, so a plain method overrides only what it changes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import torch
from torch import nn

from .cost import ModelShape, PerfVariant
from .fast.shared_input import group_siblings
from .targets import module_matches


def invalid(method: str, key: str, value: Any, valid: str) -> ValueError:
    """The one-line error every bad hyperparameter raises: names the key, the value and what is valid."""
    return ValueError(f"{method}: invalid {key}={value!r}; valid: {valid}")


def require(ok: bool, method: str, key: str, value: Any, valid: str) -> None:
    if not ok:
        raise invalid(method, key, value, valid)


class AdapterLinear(nn.Module):
    """Wraps a frozen ``nn.Linear``; output = base(x) + adapter_forward(x).

    Subclasses implement ``adapter_forward`` (never materialising ΔW, for speed) and
    ``delta_weight`` (dense fp32 ΔW for merging, export and tests). Those whose siblings reading one input can
    share products (methods/fast/shared_input.py) implement ``group_forward`` and call ``shared_output`` first.
    """

    input_group = None  # a SharedInputGroup, set by AdapterMethod.apply for siblings that read one input

    def __init__(self, base_layer: nn.Linear):
        super().__init__()
        self.base_layer = base_layer
        base_layer.weight.requires_grad_(False)
        if base_layer.bias is not None:
            base_layer.bias.requires_grad_(False)
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features

    @property
    def adapter_dtype(self) -> torch.dtype:
        return next(iter(self._parameters.values())).dtype  # own params only: base_layer's sit in the child

    def adapter_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def group_forward(cls, x: torch.Tensor, layers: Sequence["AdapterLinear"]) -> tuple[torch.Tensor, ...] | None:
        """The outputs of sibling layers that all read x, computed together; None: each computes its own."""
        return None

    def shared_output(self, x: torch.Tensor) -> torch.Tensor | None:
        """This layer's output from its sibling group, or None where it must compute it alone."""
        if self.input_group is None or not self.input_group.active:
            return None
        return self.input_group.forward(self, x)

    def delta_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        # Adapters stay fp32 (as peft's autocast_adapter_dtype) so low-precision bases still train them stably.
        delta = self.adapter_forward(x.to(self.adapter_dtype))
        return result + delta.to(result.dtype)

    @torch.no_grad()
    def retired_delta(self) -> torch.Tensor | float:
        """The ΔW restarts already folded into the base (COLA knots, ReLoRA/ReMoRA), rebuilt from the retired links
        each layer keeps; 0 for a layer that was never restarted."""
        return 0.0

    def total_delta(self) -> torch.Tensor:
        """ΔW over the whole run, in fp32 on the layer's device: the live adapter's plus every retired link's."""
        return self.delta_weight().float() + self.retired_delta()

    def fold_delta_into_base(self) -> None:
        """W ← W + ΔW, summed in fp32 and cast back to the base dtype."""
        weight = self.base_layer.weight
        merged = weight.float() + self.delta_weight().to(weight.device)
        weight.data = merged.to(weight.dtype)

    def merged_linear(self) -> nn.Linear:
        self.fold_delta_into_base()
        return self.base_layer

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def orthogonality_gaps(matrices: Sequence[torch.Tensor], squared: bool = True) -> torch.Tensor:
    """‖MMᵀ − I‖²_F (or ‖MMᵀ − I‖_F) of each matrix (rows as the orthonormal target), in no particular order.

    One batched product per shape instead of a handful of small ops per module: on a small model the per-module
    loop was most of SaLoRA's and AdaLoRA's step."""
    by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for matrix in matrices:
        by_shape.setdefault(tuple(matrix.shape), []).append(matrix)
    gaps = []
    for group in by_shape.values():
        stacked = torch.stack(group)
        gram = stacked @ stacked.transpose(1, 2)
        eye = torch.eye(gram.shape[-1], device=gram.device, dtype=gram.dtype)
        gap = gram - eye
        gaps.append(gap.pow(2).sum(dim=(1, 2)) if squared else torch.linalg.matrix_norm(gap))
    return torch.cat(gaps)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


# Sibling layers that read one input in the architectures the suite runs: Llama/Mistral/Gemma/OPT attention and
# MLP, RoBERTa's attention.
SIBLINGS_READING_ONE_INPUT = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("gate_proj", "up_proj"))

BIAS_MODES = ("none", "lora_only")  # peft's names; "lora_only": the adapted layers' biases train with the adapter


class AdapterMethod:
    """A method's configuration plus the model-level operations: apply, adapted_layers, merge.

    Training hooks (all optional, called by ``bench``):
      * ``on_train_begin(model, total_steps)`` — e.g. turn knot fractions into steps.
      * ``before_step(model, step, progress)`` — e.g. resample SaLoRA gates.
      * ``regularization_loss(model, progress)`` — tensor added to the task loss, or None.
      * ``extra_optimizers(model)`` — optimizers the method steps itself (SaLoRA gates and λ).
      * ``build_optimizer(model, optimizer_cls, lr, weight_decay, **kw)`` — one group of ``trainable_parameters``;
        LoRA+ brings its own groups.
      * ``lr_factor`` — a per-step multiplier of the learning-rate schedule, or None (ReLoRA's jagged schedule).
      * ``before_optimizer_step(model, progress)`` — after backward, before the step (SaLoRA's gates and λ).
      * ``after_optimizer_step(model, step)`` — after the step, before gradients are zeroed (AdaLoRA's allocator).
      * ``knot_due(step)`` / ``tie_knot(model)`` — COLA/ReLoRA/ReMoRA restarts.
      * ``log_stats(model)`` — floats for metrics.jsonl; ``final_metrics(model)`` — what result.json adds at the end.
      * ``state_dict()`` / ``load_state_dict()`` — method state that must survive a resume;
        ``restore_structure(model, state)`` — the shapes that state needs, rebuilt before it loads.

    Export hooks: ``peft_lora_export`` / ``lora_factors(layer)`` (the exact LoRA a layer is),
    ``final_state_keys`` and ``base_weights_changed()`` (what final_adapter.pt must hold). Cost hooks (``bench.perf``):
    ``perf_rows()``, ``perf_kwargs(...)``, ``one_time_cost``, ``restarts_per_epoch(...)``, ``macs_per_token(...)``.
    Label hooks (``bench.report``, on a run record's method node): ``label``, ``table_label``, ``rank_label``,
    ``setting_label``.
    """

    name: ClassVar[str] = ""
    layer_class: ClassVar[type[AdapterLinear]]
    # Sibling layers that read one input, where the layer class can share their products (``group_forward``);
    # checked at run time (methods/fast/shared_input.py), so a wrong guess costs a step's extra outputs, never a wrong
    # result. () turns sharing off.
    shared_input_siblings: tuple[tuple[str, ...], ...] = ()
    low_rank_family: ClassVar[bool] = True  # r must fit min(d, k)
    mergeable: ClassVar[bool] = True        # False: merge() raises one line (non-linear or virtual-token methods)
    label: ClassVar[str] = ""               # the method's name in tables (default: ``name``)
    rankless: ClassVar[bool] = False        # r is accepted and ignored: tables read "–" for its rank
    # Why trainer.gradient_checkpointing must stay off for this method ("": it may be on); bench.validate refuses it.
    no_checkpointing_because: ClassVar[str] = ""
    peft_lora_export: ClassVar[bool] = False  # export writes a peft LoRA adapter from ``lora_factors``
    # Substrings of the state keys final_adapter.pt keeps beyond the trainable tensors: buffers and frozen factors a
    # re-export needs (OLoRA's initial factors, AsyLoRA's frozen A).
    final_state_keys: ClassVar[tuple[str, ...]] = ()
    # What ``bench.perf`` times once rather than per step: "init" (``apply``, e.g. OLoRA's QR), "restart"
    # (``tie_knot``, amortised over ``restarts_per_epoch``), or None.
    one_time_cost: ClassVar[str | None] = None

    def __init__(
        self,
        r: int = 8,
        alpha: float | None = None,
        dropout: float = 0.0,
        target_modules: str | Sequence[str] = ("q_proj", "v_proj"),
        use_rslora: bool = False,
        modules_to_save: Sequence[str] = (),
        bias: str = "none",
    ):
        require(isinstance(r, int) and not isinstance(r, bool) and r > 0, self.name, "r", r, "an integer >= 1")
        alpha = float(r) if alpha is None else alpha
        require(isinstance(alpha, (int, float)) and alpha > 0, self.name, "alpha", alpha, "a number > 0")
        require(isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0, self.name, "dropout", dropout, "0 <= dropout < 1")
        require(
            isinstance(target_modules, str) or (len(target_modules) > 0 and all(isinstance(t, str) for t in target_modules)),
            self.name, "target_modules", target_modules, "a regex string or a non-empty list of module names",
        )
        self.r = r
        self.alpha = float(alpha)
        self.dropout = float(dropout)
        self.target_modules = target_modules if isinstance(target_modules, str) else list(target_modules)
        self.use_rslora = bool(use_rslora)
        self.modules_to_save = list(modules_to_save)
        require(bias in BIAS_MODES, self.name, "bias", bias, ", ".join(BIAS_MODES))
        self.bias = bias

    # ------------------------------------------------------------------ public API
    def scaling_for(self, r: int) -> float:
        """s = α/r, or α/√r with rsLoRA."""
        return self.alpha / (math.sqrt(r) if self.use_rslora else r)

    @property
    def scaling(self) -> float:
        return self.scaling_for(self.r)

    def apply(self, model: nn.Module) -> nn.Module:
        """Wrap every target nn.Linear in place and freeze everything but the adapters (and modules_to_save)."""
        targets = self.target_layers(model)
        for name, module in targets:
            self.validate_layer(name, module)
        for param in model.parameters():
            param.requires_grad_(False)
        for name, module in targets:
            _set_submodule(model, name, self.make_layer(name, module))
        if self.bias == "lora_only":  # peft's bias="lora_only": the adapted layers' own biases train too
            for _, layer in self.adapted_layers(model):
                if layer.base_layer.bias is not None:
                    layer.base_layer.bias.requires_grad_(True)
        self._unfreeze_modules_to_save(model)
        if self.shared_input_siblings:
            group_siblings(model, self.shared_input_siblings, AdapterLinear)
        return model

    def adapted_layers(self, model: nn.Module) -> Iterator[tuple[str, AdapterLinear]]:
        for name, module in model.named_modules():
            if isinstance(module, AdapterLinear):
                yield name, module

    @torch.no_grad()
    def merge(self, model: nn.Module) -> nn.Module:
        """Fold every adapter into its base weight and unwrap: the plain model with the original state_dict keys."""
        for name, layer in list(self.adapted_layers(model)):
            _set_submodule(model, name, layer.merged_linear())
        return model

    def trainable_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [p for p in model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ for subclasses
    def target_layers(self, model: nn.Module) -> list[tuple[str, nn.Linear]]:
        """The nn.Linear layers ``apply`` wraps: those ``target_modules`` names (peft's matching rule)."""
        targets = [
            (name, module)
            for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and module_matches(name, self.target_modules)
        ]
        if not targets:
            linear_names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
            raise invalid(self.name, "target_modules", self.target_modules, f"names of nn.Linear layers in this model: {linear_names}")
        return targets

    def make_layer(self, name: str, base_layer: nn.Linear) -> AdapterLinear:
        raise NotImplementedError

    def validate_layer(self, name: str, base_layer: nn.Linear) -> None:
        if self.low_rank_family:
            limit = min(base_layer.in_features, base_layer.out_features)
            require(self.r <= limit, self.name, "r", self.r, f"1 <= r <= min(out, in) = {limit} for layer {name}")

    def _unfreeze_modules_to_save(self, model: nn.Module) -> None:
        if not self.modules_to_save:
            return
        matched = False
        for name, module in model.named_modules():
            if module_matches(name, self.modules_to_save) and not isinstance(module, AdapterLinear):
                matched = True
                for param in module.parameters():
                    param.requires_grad_(True)
        require(matched, self.name, "modules_to_save", self.modules_to_save, "names of modules in this model")

    # ------------------------------------------------------------------ training hooks (no-op defaults)
    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        pass

    def before_step(self, model: nn.Module, step: int, progress: float) -> None:
        pass

    def regularization_loss(self, model: nn.Module, progress: float) -> torch.Tensor | None:
        return None

    def extra_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        return []

    def build_optimizer(self, model: nn.Module, optimizer_cls: type, lr: float, weight_decay: float,
                        **kwargs: Any) -> torch.optim.Optimizer:
        return optimizer_cls([{"params": self.trainable_parameters(model), "weight_decay": weight_decay}], lr=lr, **kwargs)

    @property
    def lr_factor(self) -> Callable[[int], float] | None:
        """A multiplier of the schedule's learning rate at each optimizer step count (a LambdaLR's view), or None."""
        return None

    def before_optimizer_step(self, model: nn.Module, progress: float) -> None:
        pass

    def after_optimizer_step(self, model: nn.Module, step: int) -> None:
        pass

    def knot_due(self, step: int) -> bool:
        return False

    def tie_knot(self, model: nn.Module) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """Fold the adapter into the base and start a fresh one; returns the (retired, fresh) parameter pairs whose
        optimizer state must go. Only methods whose ``knot_due`` ever says so do anything."""
        return []

    def log_stats(self, model: nn.Module) -> dict[str, float]:
        return {}

    def final_metrics(self, model: nn.Module) -> dict[str, Any]:
        """Metrics of the trained method itself that result.json records beside the task's (e.g. kept ranks)."""
        return {}

    def state_dict(self, model: nn.Module | None = None) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module | None = None) -> None:
        pass

    def restore_structure(self, model: nn.Module, state: dict[str, Any]) -> None:
        """Before a saved model state loads into a freshly applied model: give it the shapes ``state`` (this method's
        ``state_dict``) was saved with (e.g. the link a chain had reached)."""

    # ------------------------------------------------------------------ export hooks
    def lora_factors(self, layer: AdapterLinear) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(B', A') with the layer's whole-run ΔW = B'·A' relative to the original weight, scaling folded into B';
        None where the layer is not exactly a LoRA."""
        return None

    def trained_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Every tensor training changed, and nothing else: the trainable parameters, the buffers and frozen factors a
        reload needs (``final_state_keys``), and the adapted layers' base weights once a knot has folded an update into
        them. With the method re-applied to the original model, loading it restores the trained model exactly."""
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        state = {k: v.detach() for k, v in model.state_dict().items()
                 if k in trainable or any(part in k for part in self.final_state_keys)}
        if self.base_weights_changed():
            state.update({f"{name}.base_layer.weight": layer.base_layer.weight.detach()
                          for name, layer in self.adapted_layers(model)})
        return state

    def base_weights_changed(self) -> bool:
        """Whether training wrote into the frozen base weights (a knot folded an adapter in): final_adapter.pt then
        keeps the adapted layers' base weights too."""
        return False

    # ------------------------------------------------------------------ cost hooks (bench.perf)
    @classmethod
    def perf_rows(cls) -> list[PerfVariant]:
        """The rows ``bench.perf`` times this method under."""
        return [PerfVariant(cls.name)]

    @classmethod
    def perf_kwargs(cls, epoch_steps: int, restart_every: int) -> dict[str, Any]:
        """Hyperparameters a perf row needs from the benchmark's own settings (its epoch, its restart period)."""
        return {}

    def restarts_per_epoch(self, epoch_steps: int) -> float:
        """How many of its "restart" one-time costs an epoch of ``epoch_steps`` optimizer steps holds."""
        return 0.0

    def activation_bytes(self, fan_in: int, fan_out: int, dtype_bytes: int) -> float:
        """Bytes one adapted linear layer keeps for backward per token beyond what its frozen layer keeps (bench.plan's
        memory plan): LoRA's rank-r product and, with dropout, the dropped input and its mask."""
        dropped = fan_in * (dtype_bytes + 1) if getattr(self, "dropout", 0.0) else 0
        return getattr(self, "r", 0) * dtype_bytes + dropped

    def macs_per_token(self, shape: ModelShape, base: nn.Module, tokens: int, seq_len: int) -> float:
        """The multiply-accumulates per token a training step adds to the frozen model's forward and input-gradient
        backward (methods/cost.py), on ``base`` (the model before ``apply``) of ``shape``, ``tokens`` per step in
        sequences of ``seq_len``."""
        raise NotImplementedError(f"{self.name}: no macs_per_token, so bench.perf cannot hold its step to its arithmetic")

    # ------------------------------------------------------------------ label hooks (bench.report)
    # On a run record's method node (a dict): records are read long after the run, and building the method would
    # re-validate hyperparameters that may since have changed.
    @classmethod
    def table_label(cls, cfg: Mapping[str, Any]) -> str:
        return cls.label or cls.name

    @classmethod
    def rank_label(cls, cfg: Mapping[str, Any]) -> str:
        return "–" if cls.rankless else str(cfg.get("r"))

    @classmethod
    def setting_label(cls, cfg: Mapping[str, Any]) -> str:
        """The run's variant of the method where a table separates them (e.g. MoRA's operator); "" for none."""
        return ""

    def hparams(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": self.target_modules,
            "use_rslora": self.use_rslora,
            "bias": self.bias,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"
