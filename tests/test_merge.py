"""Every method on Llama-, OPT- and RoBERTa-style models: identity at init, merge == unmerged, only adapters train."""

from __future__ import annotations

import pytest
import torch

from methods import BASELINES, METHODS, build_method
from tests.conftest import ARCHS, model_output

ADAPTER_PARAM_NAMES = {"lora_A", "lora_B", "mora_M", "gate_log_alpha"}
EXTRA = {"mora": {"mora_type": "rotation"}, "remora": {"mora_type": "sharing"}}


def perturb_trainables(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                scale = 2.0 if name.endswith("gate_log_alpha") else 0.1
                p.add_(torch.randn(p.shape, generator=g) * scale)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("method", sorted(set(METHODS) - set(BASELINES)))  # the baselines: tests/test_baselines.py
def test_identity_at_init_and_merge_equals_unmerged(method, arch, input_ids):
    build_model, targets = ARCHS[arch]
    torch.manual_seed(0)
    model = build_model().eval()
    reference = model_output(model, input_ids).detach()
    keys_before = list(model.state_dict().keys())

    m = build_method(method, r=4, alpha=8, target_modules=targets, **EXTRA.get(method, {}))
    model = m.apply(model)
    assert (model_output(model, input_ids) - reference).abs().max() <= 1e-4, "output changed at step 0"

    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.rsplit(".", 1)[-1] in ADAPTER_PARAM_NAMES for n in trainable)
    if method != "salora":
        assert not any(n.endswith("gate_log_alpha") for n in trainable)
    wrapped = dict(m.adapted_layers(model))
    assert len(wrapped) > 0 and all(n.rsplit(".", 1)[-1] in targets for n in wrapped)

    perturb_trainables(model, seed=1)
    model.eval()
    adapted = model_output(model, input_ids).detach()
    assert (adapted - reference).abs().max() > 1e-3, "perturbed adapters had no effect"
    for _, layer in m.adapted_layers(model):
        delta = layer.delta_weight()
        assert delta.dtype == torch.float32 and delta.shape == (layer.out_features, layer.in_features)

    plain = m.merge(model)
    assert list(plain.state_dict().keys()) == keys_before
    assert not list(m.adapted_layers(plain))
    assert (model_output(plain, input_ids) - adapted).abs().max() <= 1e-4
