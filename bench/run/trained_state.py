"""What training changed, saved apart from the frozen base: checkpoints and final_adapter.pt hold only the method's
trained state (AdapterMethod.trained_state) — the base model is loaded again from its source — and loading it checks
every key, so a file from another run is refused rather than loaded half."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError

TRAINED_STATE = "trained_state.safetensors"


def save_trained_state(method, model, path: Path) -> None:
    """The method's trained state as safetensors (tensors only: nothing in it can run code when loaded). Tied tensors
    are stored once per key (safetensors refuses shared storage)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in method.trained_state(model).items()}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)


def load_trained_state(model, state: dict, source: str) -> None:
    """``state`` into the model the method was applied to, every key accounted for: a tensor the model lacks, or no
    tensor for a trained parameter, or another shape, is one line naming ``source``."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{source} does not hold an adapter state (a dict of tensors)")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    unexpected = sorted(set(state) - set(model.state_dict()))
    missing = sorted(trainable - set(state))
    if unexpected or missing:
        what = (f"{len(unexpected)} tensor(s) the run's model lacks (e.g. {unexpected[0]})" if unexpected else
                f"no tensor for {len(missing)} trained parameter(s) (e.g. {missing[0]})")
        raise UserError(f"{source} does not match the run's method and model: {what}")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a shape that differs
        raise UserError(f"{source} does not match the run's method and model: "
                        f"{str(err).strip().splitlines()[-1].strip()}") from err


def load_trained_state_file(model, path: Path) -> None:
    device = next(model.parameters()).device
    load_trained_state(model, load_file(str(path), device=str(device)), str(path))
