"""The papers' baselines, each against an oracle independent of the code under test: the method's equation written
out densely, peft's own run of the same configuration, or the optimizer's parameter groups read directly."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from bench.run.data import Collator
from bench.run.trainer import AdapterTrainer, MethodHooks
from methods import BASELINES, METHODS, build_method
from methods.bottleneck import BottleneckAdapter
from tests.bench_helpers import FAST, run_inprocess
from tests.conftest import ARCHS, VOCAB, model_output, tiny_llama

MERGEABLE = ("fft", "dora", "loraplus", "asylora", "adalora")
NOT_MERGEABLE = ("prefix", "prompt", "adapter_h", "adapter_p")
VIRTUAL_TOKENS = ("prefix", "prompt")


def test_every_baseline_is_a_registered_method_with_a_config():
    from bench.resolvers import run_id  # noqa: F401  (the conf resolvers)
    from tests.bench_helpers import REPO

    assert set(MERGEABLE + NOT_MERGEABLE) == set(BASELINES) <= set(METHODS)
    for name in BASELINES:
        assert (REPO / "conf" / "method" / f"{name}.yaml").is_file(), name


def own_logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The sequence's own positions (prompt tuning prepends its virtual ones)."""
    return model_output(model, ids)[:, -ids.shape[1]:]


def perturb(model: torch.nn.Module, seed: int, only: str = "") -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and only in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("method", sorted(BASELINES))
def test_identity_at_init_then_merge_equals_unmerged_or_one_line_refusal(method, arch, input_ids):
    build_model, targets = ARCHS[arch]
    torch.manual_seed(0)
    model = build_model().eval()
    reference = own_logits(model, input_ids).detach()
    keys_before = list(model.state_dict().keys())
    m = build_method(method, r=4, alpha=8, target_modules=targets)
    model = m.apply(model).eval()
    if method not in VIRTUAL_TOKENS:  # trained prefixes / prompts start random: they change the output at once
        assert (own_logits(model, input_ids) - reference).abs().max() <= 1e-5, "output changed at step 0"
    perturb(model, seed=1)
    adapted = own_logits(model, input_ids).detach()
    assert (adapted - reference).abs().max() > 1e-3, "perturbed trainables had no effect"
    if method in MERGEABLE:
        plain = m.merge(model)
        assert list(plain.state_dict().keys()) == keys_before
        assert (own_logits(plain, input_ids) - adapted).abs().max() <= 1e-4
    else:
        with pytest.raises(ValueError, match=rf"^{method}: not mergeable") as err:
            m.merge(model)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_dora_equals_its_equation_written_out(arch, input_ids):
    """DoRA (Liu et al. 2024, Eq. 5): W' = m ⊙ (W + s·BA) / ‖W + s·BA‖ (norm of each output row), on a plain copy."""
    build_model, targets = ARCHS[arch]
    torch.manual_seed(0)
    original = build_model().eval()
    model = build_method("dora", r=4, alpha=8, target_modules=targets).apply(copy.deepcopy(original)).eval()
    perturb(model, seed=2, only="lora_")  # A, B and the magnitude m all move away from their init
    dense = copy.deepcopy(original)
    layers = [(n, mod) for n, mod in model.named_modules() if hasattr(mod, "lora_magnitude_vector") and mod.lora_A]
    assert layers
    with torch.no_grad():
        for name, layer in layers:
            W = layer.get_base_layer().weight
            A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
            m = layer.lora_magnitude_vector["default"].weight
            V = W + (8 / 4) * B @ A
            dense.get_submodule(name.removeprefix("base_model.model.")).weight.copy_(m[:, None] * V / V.norm(dim=1, keepdim=True))
    assert (model_output(model, input_ids) - model_output(dense, input_ids)).abs().max() <= 1e-5


def test_loraplus_groups_carry_lr_on_A_and_ratio_times_lr_on_B(tmp_path):
    torch.manual_seed(0)
    method = build_method("loraplus", r=4, target_modules=["q_proj", "v_proj"], lr_ratio=16)
    model = method.apply(tiny_llama())
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=2e-4, weight_decay=0.0, report_to=[], use_cpu=True)
    optimizer = AdapterTrainer(model=model, args=args, method=method, task_kind="sft").create_optimizer()
    by_lr: dict[float, set[int]] = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(round(group["lr"], 12), set()).update(id(p) for p in group["params"])
    A = {id(p) for n, p in model.named_parameters() if n.endswith("lora_A")}
    B = {id(p) for n, p in model.named_parameters() if n.endswith("lora_B")}
    assert len(A) == len(B) == 4
    assert {lr: ids for lr, ids in by_lr.items() if ids} == {2e-4: A, round(16 * 2e-4, 12): B}


def test_asylora_trains_b_alone_over_a_frozen_random_orthogonal_a(input_ids):
    torch.manual_seed(0)
    method = build_method("asylora", r=4, target_modules=["q_proj", "v_proj"])
    model = method.apply(tiny_llama())
    layers = list(method.adapted_layers(model))
    for _, layer in layers:
        A = layer.lora_A
        assert not A.requires_grad and layer.lora_B.requires_grad and not layer.lora_B.any()
        assert torch.allclose(A @ A.T, torch.eye(4), atol=1e-5)  # orthonormal rows
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(layer.out_features * 4 for _, layer in layers)  # half of LoRA's (d + k)·r when d = k
    model(input_ids=input_ids, labels=input_ids).loss.backward()
    assert all(layer.lora_A.grad is None and layer.lora_B.grad is not None for _, layer in layers)


@pytest.mark.parametrize("method,width,positions", [("adapter_h", 4, ("o_proj", "down_proj")), ("adapter_p", 8, ("down_proj",))])
def test_bottleneck_adapters_sit_where_the_papers_put_them_and_add_their_equation(method, width, positions, input_ids):
    torch.manual_seed(0)
    m = build_method(method, r=4)
    model = m.apply(tiny_llama())
    wrapped = {n: mod for n, mod in model.named_modules() if isinstance(mod, BottleneckAdapter)}
    assert sorted({n.rsplit(".", 1)[-1] for n in wrapped}) == sorted(positions) and len(wrapped) == 2 * len(positions)
    d = 48  # the tiny Llama's hidden size: every adapter maps d → width → d
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == len(wrapped) * (2 * d * width + width + d)
    perturb(model, seed=3)
    layer = next(iter(wrapped.values()))
    x = torch.randn(3, layer.base_layer.in_features)
    h = x @ layer.base_layer.weight.T
    act = F.silu if method == "adapter_h" else F.relu
    expected = h + act(h @ layer.adapter_down.weight.T + layer.adapter_down.bias) @ layer.adapter_up.weight.T + layer.adapter_up.bias
    assert torch.allclose(layer(x), expected, atol=1e-6)


@pytest.mark.parametrize("arch,expected", [("opt", {"self_attn.out_proj", "fc2"}),
                                           ("roberta", {"attention.output.dense", "output.dense"})])
def test_houlsby_positions_on_opt_and_roberta(arch, expected):
    model = build_method("adapter_h", r=2).apply(ARCHS[arch][0]())
    wrapped = [n for n, mod in model.named_modules() if isinstance(mod, BottleneckAdapter)]
    assert len(wrapped) == 4 and {n.split(".", 4)[-1] for n in wrapped} == expected  # 2 layers × 2 positions


@pytest.mark.parametrize("method", ["fft", "adalora", "prompt", "adapter_h"])
def test_a_baseline_resumed_from_a_checkpoint_ends_as_the_uninterrupted_run(method, tmp_path):
    import shutil

    run = [*FAST, f"method={method}", "trainer.learning_rate=1e-3"]
    reference, _ = run_inprocess(run, tmp_path / "ref")
    if method == "fft":
        assert reference["trainable_params"] == reference["total_params"]
    _, run_dir = run_inprocess(run, tmp_path / "again")
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-16")  # killed after step 8's checkpoint
    (run_dir / "result.json").unlink()
    resumed, _ = run_inprocess(run, tmp_path / "again")
    assert resumed["train_loss"] == reference["train_loss"]
    assert resumed["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]


@pytest.mark.parametrize("method", ["dora", "adalora", "prefix", "prompt"])
def test_trainable_counts_match_peft_s_own(method):
    from bench.run.models import count_parameters

    model = build_method(method, r=4, target_modules=["q_proj", "v_proj"]).apply(tiny_llama())
    assert count_parameters(model)[0] == model.get_nb_trainable_parameters()[0] > 0


def test_encoder_prefixes_equal_attention_over_prepended_keys_written_out(input_ids):
    """The oracle is the prefix-tuning equation, dense: softmax(q·[Pk; K]ᵀ/√d + padding)·[Pv; V] per head, with the
    padded positions hidden from every query and the prefixes visible to all."""
    from tests.conftest import tiny_roberta

    torch.manual_seed(0)
    model = build_method("prefix", num_virtual_tokens=3).apply(tiny_roberta()).eval()
    attention = model.roberta.encoder.layer[0].attention.self
    seen = {}
    attention.register_forward_hook(lambda mod, args, kwargs, out: seen.update(h=args[0], out=out[0]), with_kwargs=True)
    mask = torch.ones_like(input_ids)
    mask[0, -3:] = 0  # one padded row: its last three tokens must stay invisible
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=mask)
        h, heads = seen["h"], attention.num_attention_heads
        split = lambda t: t.view(*t.shape[:2], heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(attention.query(h)), split(attention.key(h)), split(attention.value(h))
        k = torch.cat([attention.prefix_key.expand(len(h), -1, -1, -1), k], dim=2)
        v = torch.cat([attention.prefix_value.expand(len(h), -1, -1, -1), v], dim=2)
        hidden = torch.cat([torch.zeros(len(h), 3), (1 - mask).float() * -1e9], dim=1)[:, None, None, :]
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + hidden, dim=-1)
        dense = (weights @ v).transpose(1, 2).reshape(h.shape)
    assert torch.allclose(seen["out"], dense, atol=1e-5)
    layers, width = model.config.num_hidden_layers, model.config.hidden_size
    prefixes = [p for n, p in model.named_parameters() if p.requires_grad and "prefix_" in n]
    assert sum(p.numel() for p in prefixes) == 3 * layers * 2 * width  # peft's count: P × layers × 2 × hidden


def test_encoder_prefixes_leave_padded_rows_unchanged_by_their_padding(input_ids):
    """A padded example's logits do not depend on what sits in its padded positions."""
    from tests.conftest import tiny_roberta

    torch.manual_seed(0)
    model = build_method("prefix", num_virtual_tokens=3).apply(tiny_roberta()).eval()
    mask = torch.ones_like(input_ids)
    mask[:, -2:] = 0
    other = input_ids.clone()
    other[:, -2:] = (other[:, -2:] + 1) % VOCAB
    with torch.no_grad():
        assert torch.allclose(model(input_ids=input_ids, attention_mask=mask).logits,
                              model(input_ids=other, attention_mask=mask).logits, atol=1e-5)


def test_encoder_prefixes_export_their_tensors_and_reload_to_the_same_logits(input_ids, tmp_path):
    from safetensors.torch import load_file

    from bench.export import export_own_format
    from tests.conftest import tiny_roberta

    torch.manual_seed(0)
    base = tiny_roberta().eval()
    method = build_method("prefix", num_virtual_tokens=3, modules_to_save=["classifier"])
    model = method.apply(copy.deepcopy(base)).eval()
    perturb(model, seed=2)
    out = export_own_format(method, model, tmp_path, "tiny-roberta", {"method": "prefix", "task_type": "SEQ_CLS"})
    assert json.loads((out / "adapter_config.json").read_text())["library"] == "lorabench (methods.peft_backed)"
    reloaded = build_method("prefix", num_virtual_tokens=3, modules_to_save=["classifier"]).apply(copy.deepcopy(base))
    missing, unexpected = reloaded.load_state_dict(load_file(out / "adapter_model.safetensors"), strict=False)
    assert not unexpected and all("prefix_" not in k and "classifier" not in k for k in missing)
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(input_ids=input_ids).logits, model(input_ids=input_ids).logits)


# ------------------------------------------------------------------ the suite's run against a plain peft run
def _dataset(n: int = 24, length: int = 10) -> Dataset:
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, VOCAB, (n, length), generator=g).tolist()
    return Dataset.from_list([{"input_ids": s, "labels": s} for s in ids])


class AdaLoraAllocate(TrainerCallback):
    """peft's documented AdaLoRA loop: update_and_allocate after the optimizer step, before zero_grad."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        model.base_model.update_and_allocate(state.global_step)


def _plain_peft_config(method: str):
    from peft import AdaLoraConfig, PrefixTuningConfig, PromptTuningConfig

    if method == "adalora":  # t_start 0.25, t_end 0.5 of 8 steps: tinit 2, tfinal 4
        return AdaLoraConfig(task_type="CAUSAL_LM", init_r=4, target_r=2, lora_alpha=8, lora_dropout=0.0,
                             target_modules=["q_proj", "v_proj"], tinit=2, tfinal=4, deltaT=1, total_step=8)
    cls = PrefixTuningConfig if method == "prefix" else PromptTuningConfig
    return cls(task_type="CAUSAL_LM", num_virtual_tokens=5)


@pytest.mark.parametrize("method", ["adalora", "prefix", "prompt"])
def test_the_suites_run_equals_a_plain_peft_run(method, tmp_path):
    from peft import get_peft_model

    kwargs = ({"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "total_step": 8,
               "t_start": 0.25, "t_end": 0.5} if method == "adalora" else {"num_virtual_tokens": 5})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=4, learning_rate=5e-3,
                             lr_scheduler_type="constant", report_to=[], save_strategy="no", use_cpu=True,
                             disable_tqdm=True, logging_steps=1, seed=0)
    data, collate = _dataset(), Collator(0)

    torch.manual_seed(0)
    base = tiny_llama()
    suite_method = build_method(method, **kwargs)
    torch.manual_seed(1)
    suite_model = suite_method.apply(copy.deepcopy(base))
    suite = AdapterTrainer(model=suite_model, args=args, train_dataset=data, data_collator=collate,
                           callbacks=[MethodHooks(suite_method)], method=suite_method, task_kind="sft")
    suite.train()

    torch.manual_seed(1)
    plain_model = get_peft_model(copy.deepcopy(base), _plain_peft_config(method))
    plain = Trainer(model=plain_model, args=args, train_dataset=data, data_collator=collate,
                    callbacks=[AdaLoraAllocate()] if method == "adalora" else [])
    plain.model_accepts_loss_kwargs = False  # the model's own token mean, as the suite logs (Adam is blind to the scale)
    plain.train()

    suite_state = {n: p for n, p in suite_model.named_parameters() if p.requires_grad}
    plain_state = {n: p for n, p in plain_model.named_parameters() if p.requires_grad}
    assert suite_state.keys() == plain_state.keys() and suite_state
    for name in suite_state:
        assert torch.allclose(suite_state[name], plain_state[name], atol=1e-5), name
    suite_losses = [h["loss"] for h in suite.state.log_history if "loss" in h]
    plain_losses = [h["loss"] for h in plain.state.log_history if "loss" in h]
    assert suite_losses == pytest.approx(plain_losses, abs=1e-4) and len(suite_losses) == 8
