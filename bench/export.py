"""Trained adapters out of the suite, in formats the ecosystem loads.

* ``export_peft``: a peft LoRA adapter directory (adapter_config.json + adapter_model.safetensors) that
  ``PeftModel.from_pretrained(original_base, dir)`` loads and that reproduces the suite's logits. A method with
  ``peft_lora_export`` is written as the exact LoRA it is relative to the *original* weights (its
  ``lora_factors``), scaling folded into B (lora_alpha = r per module, so peft's scale is 1); per-module ranks in
  rank_pattern (LoRA's chain links concatenated, OLoRA's residual, SaLoRA's kept components, MoRA's sharing and
  truncation as the rank-r̂ LoRA they are).
* ``export_merged``: every method (MoRA rotation/decoupling too) merged into a transformers checkpoint with
  the tokenizer, loadable by AutoModelForCausalLM and lm-eval's ``hf`` model.
* ``export_own_format``: methods that do not merge (prefix / prompt tuning, bottleneck adapters) and the peft-backed
  ones: peft's own adapter directory (``PeftModel.save_pretrained``) for the peft-backed methods; for the suite's
  bottleneck adapters, their tensors (adapter_model.safetensors) and an adapter_config.json naming method, width,
  activation and base.
* A model card (README.md) in each directory, opening with the Hub's YAML metadata header.

``python -m bench.export RUN_DIR`` re-exports a finished run from its saved final adapter state.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from methods import AdapterMethod

from .records import atomic_write_text

FINAL_STATE = "final_adapter.pt"
EXPORT_DIR = "export"
PROBE = "probe.safetensors"  # the suite's logits on PROBE_TEXT: tensors only, nothing a loader could execute


def export_peft(method: AdapterMethod, model, out_dir: Path, base_model: str, card: dict[str, Any]) -> Path:
    from peft import LoraConfig

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors, rank_pattern, targets = {}, {}, []
    for name, layer in method.adapted_layers(model):
        factors = method.lora_factors(layer) if method.peft_lora_export else None
        if factors is None:
            raise ValueError(f"method {method!r} has no exact LoRA form; use the merged export")
        B, A = factors
        if A.shape[0] == 0:  # SaLoRA pruned every component: the module is left out
            continue
        targets.append(name)
        rank_pattern[name] = A.shape[0]
        tensors[f"base_model.model.{name}.lora_A.weight"] = A.contiguous().cpu()
        tensors[f"base_model.model.{name}.lora_B.weight"] = B.contiguous().cpu()
        if method.bias == "lora_only" and layer.base_layer.bias is not None:  # trained with the adapter
            tensors[f"base_model.model.{name}.base_layer.bias"] = layer.base_layer.bias.detach().contiguous().cpu()
    if not targets:
        raise ValueError("every adapted module was pruned: nothing to export")
    ranks = sorted(set(rank_pattern.values()))
    config = LoraConfig(
        r=ranks[0], lora_alpha=ranks[0], target_modules=targets,
        rank_pattern=rank_pattern, alpha_pattern={k: v for k, v in rank_pattern.items()},  # scale 1 per module
        lora_dropout=getattr(method, "dropout", 0.0), base_model_name_or_path=base_model, task_type=card.get("task_type"),
        bias=method.bias,
    )
    config.save_pretrained(str(out_dir))
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    write_card(out_dir, {**card, "format": "peft LoRA adapter", "rank_pattern": rank_pattern})
    return out_dir


def export_merged(method: AdapterMethod, model, tokenizer, out_dir: Path, card: dict[str, Any]) -> Path:
    out_dir = Path(out_dir)
    plain = method.merge(copy.deepcopy(model))
    plain.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    write_card(out_dir, {**card, "format": "merged transformers checkpoint"})
    return out_dir


def export_own_format(method: AdapterMethod, model, out_dir: Path, base_model: str, card: dict[str, Any]) -> Path:
    """peft's adapter directory for a PeftModel; the bottleneck adapters' tensors and config otherwise."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        for config in model.peft_config.values():
            config.base_model_name_or_path = base_model  # the hub id where the run used one, not this machine's cache
        model.save_pretrained(str(out_dir))
        write_card(out_dir, {**card, "format": f"peft {method.name} adapter"})
        return out_dir
    tensors = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    config = {"method": method.name, **method.hparams(), "base_model_name_or_path": base_model,
              "task_type": card.get("task_type"), "library": f"lorabench ({type(method).__module__})"}
    atomic_write_text(out_dir / "adapter_config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_card(out_dir, {**card, "format": f"lorabench {method.name} adapter (load with methods.build_method)"})
    return out_dir


def hub_header(card: dict[str, Any]) -> list[str]:
    """The Hub's model-card metadata (YAML front matter): base_model, library_name, tags, datasets."""
    library = "peft" if str(card.get("format", "")).startswith("peft") else "transformers"
    lines = ["---", f"base_model: {card.get('base_model')}", f"library_name: {library}", "tags:", "- lorabench",
             f"- {card.get('method')}"]
    if card.get("dataset"):
        lines += ["datasets:", f"- {card['dataset']}"]
    return lines + ["---", ""]


def write_card(out_dir: Path, card: dict[str, Any]) -> None:
    lines = [*hub_header(card), f"# {card.get('method')} adapter — {card.get('model')} on {card.get('task')}", "",
             f"Exported by lorabench as a {card.get('format')}.", ""]
    for key in ("method", "hyperparameters", "model", "base_model", "task", "metrics", "source_run", "rank_pattern", "format"):
        if key in card:
            value = card[key]
            lines.append(f"- **{key}**: " + (f"`{json.dumps(value, sort_keys=True, default=str)}`" if isinstance(value, (dict, list)) else f"{value}"))
    if card.get("format", "").startswith("peft"):
        lines += ["", "```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM",
                  f"base = AutoModelForCausalLM.from_pretrained({card.get('base_model')!r})",
                  "model = PeftModel.from_pretrained(base, '<this directory>')", "```"]
    atomic_write_text(out_dir / "README.md", "\n".join(lines) + "\n")


def export_run(method: AdapterMethod, model, tokenizer, run_dir: Path, cfg, metrics: dict) -> dict[str, str]:
    """Both formats where they apply; returns {format: path}. Everything is written into a hidden staging directory
    beside ``export/`` and swapped in by a rename once whole, so a kill or a full disk never leaves an ``export/``
    that looks complete (an earlier export stays until the new one is whole)."""
    final = Path(run_dir) / EXPORT_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{EXPORT_DIR}-partial-", dir=run_dir))
    try:
        written = write_exports(method, model, tokenizer, staging, run_dir, cfg, metrics)
        replace_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {fmt: str(final / name) for fmt, name in written.items()}


def replace_dir(new: Path, final: Path) -> None:
    """Put the whole directory ``new`` at ``final``; an existing ``final`` is moved aside first and removed last."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        final.rename(old)
    new.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_exports(method: AdapterMethod, model, tokenizer, out: Path, run_dir: Path, cfg, metrics: dict) -> dict[str, str]:
    """Every format that applies, into ``out``; returns {format: directory name inside ``out``}."""
    base = cfg.model.path if cfg.model.source in ("hub", "local") else cfg.model.name
    card = {"method": method.name, "hyperparameters": method.hparams(), "model": cfg.model.name, "base_model": base,
            "task": cfg.task.name, "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "source_run": str(run_dir), "task_type": "CAUSAL_LM" if cfg.model.arch == "decoder" else "SEQ_CLS"}
    from .tasks import get_spec

    dataset = get_spec(cfg.task.name).hub_dataset
    if dataset:
        card["dataset"] = dataset
    save_probe(model, tokenizer, out / PROBE)
    written = {}
    if method.mergeable:
        export_merged(method, model, tokenizer, out / "merged", card)
        written["merged"] = "merged"
    else:
        print(f"export: {method.name} is not mergeable; exported in its own format only")
    if not method.mergeable or hasattr(model, "peft_config"):
        export_own_format(method, model, out / method.name, base, card)
        written[method.name] = method.name
    elif method.peft_lora_export and cfg.model.source in ("hub", "local"):
        export_peft(method, model, out / "peft", base, card)
        written["peft"] = "peft"
    return written


PROBE_TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside."


@torch.no_grad()
def save_probe(model, tokenizer, path: Path) -> None:
    """The suite's own logits on a fixed input, so any loader of an export can be checked against them."""
    was_training = model.training
    model.eval()
    enc = tokenizer(PROBE_TEXT, return_tensors="pt").to(next(model.parameters()).device)
    logits = model(**enc).logits.float().cpu()
    model.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"input_ids": enc.input_ids.cpu().contiguous(), "logits": logits.contiguous()}, str(path))


def save_final_state(method: AdapterMethod, model, run_dir: Path) -> None:
    """What a later `python -m bench.export RUN_DIR` needs: trainable tensors + adapted layers' buffers + method state."""
    state = {k: v.cpu() for k, v in method.trained_state(model).items()}
    tmp = Path(run_dir) / (FINAL_STATE + ".tmp")
    torch.save({"state": state, "method": method.state_dict(model)}, tmp)
    tmp.replace(Path(run_dir) / FINAL_STATE)


USAGE = "usage: python -m bench.export RUN_DIR (a run directory holding result.json)"


def method_from_record(method_cfg: dict) -> AdapterMethod:
    """The method a run's record names, built from the registry by name: a ``_target_`` or any other key read from a
    received run directory never chooses what code runs."""
    from methods import METHODS, build_method

    from .errors import UserError

    kwargs = {k: v for k, v in method_cfg.items() if not str(k).startswith("_")}
    name = kwargs.pop("name", None)
    if name not in METHODS:
        raise UserError(f"result.json: method.name={name!r} is not a method of this suite; valid: {', '.join(sorted(METHODS))}")
    try:
        return build_method(name, **kwargs)
    except ValueError as err:
        raise UserError(f"result.json: {err}") from err


def load_final_state(model, saved: dict, run_dir: Path) -> None:
    """The saved adapter into the rebuilt model, every key accounted for: a file from another run (other modules,
    other shapes) or one missing a trained tensor is refused rather than exported untrained."""
    from .run.trained_state import load_trained_state

    load_trained_state(model, saved.get("state") if isinstance(saved, dict) else None,
                       f"RUN_DIR={str(run_dir)!r}: {FINAL_STATE}")


def main(argv: list[str] | None = None) -> None:
    """Re-export a finished run: rebuild model + method from its result.json, load the final adapter state."""
    from omegaconf import OmegaConf

    from .errors import DiskFull, UserError, is_disk_full, report_and_exit
    from .run.models import load_model, load_tokenizer
    from .records import load_tensor_file
    from .tasks import get_spec

    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return
    try:
        if len(args) != 1 or args[0].startswith("-"):
            raise UserError(f"arguments {' '.join(args) or '(none)'!r} not understood; {USAGE}")
        run_dir = Path(args[0])
        result_path = run_dir / "result.json"
        if not result_path.is_file() or not (run_dir / FINAL_STATE).is_file():
            raise UserError(f"RUN_DIR={str(run_dir)!r} has no finished run (result.json and {FINAL_STATE} expected)")
        try:
            result = json.loads(result_path.read_text())
        except ValueError as err:
            raise UserError(f"RUN_DIR={str(run_dir)!r}: result.json is damaged ({err}); re-run the training command "
                            "(force=true) to rewrite it") from err
        saved = load_tensor_file(run_dir / FINAL_STATE)
        config = result.get("config") if isinstance(result, dict) else None
        if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in ("model", "task", "method")):
            raise UserError(f"RUN_DIR={str(run_dir)!r}: result.json has no run config (model, task, method); re-run "
                            "the training command (force=true) to rewrite it")
        cfg = OmegaConf.create(config)
        method = method_from_record(OmegaConf.to_container(cfg.method, resolve=True))
        spec = get_spec(cfg.task.name)
        tokenizer = load_tokenizer(cfg.model)
        model = load_model(cfg.model, "seq_cls" if spec.kind == "cls" else "causal_lm", spec.num_labels, tokenizer)
        model = method.apply(model)
        method_state = saved.get("method") if isinstance(saved, dict) else None
        if not isinstance(method_state, dict):
            raise UserError(f"RUN_DIR={str(run_dir)!r}: {FINAL_STATE} holds no method state; re-run the training "
                            "command (force=true) to rewrite it")
        try:
            method.restore_structure(model, method_state)
            load_final_state(model, saved, run_dir)
            method.load_state_dict(method_state, model=model)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise UserError(f"RUN_DIR={str(run_dir)!r}: {FINAL_STATE}'s method state does not match the run's method "
                            f"{method.name} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
        for fmt, path in export_run(method, model, tokenizer, run_dir, cfg, result.get("metrics", {})).items():
            print(f"export ({fmt}): {path}")
    except UserError as err:
        report_and_exit(err)
    except OSError as err:  # a read-only run directory or a full disk: one line; the staging dir is already gone
        if is_disk_full(err):
            report_and_exit(DiskFull(f"no space left on the device writing {err.filename or run_dir}; free space and "
                                     "run the same command again (the previous export, if any, is untouched)"))
        report_and_exit(UserError(f"RUN_DIR={str(args[0])!r}: cannot write {err.filename or args[0]} ({err.strerror}); "
                                  "valid: a run directory you can write"))


if __name__ == "__main__":
    main()
