"""OmegaConf resolvers the configs use. ``${run_id:}`` names a run dir deterministically from its config."""

from __future__ import annotations

import hashlib
import json
import os

from omegaconf import OmegaConf

from .validate import SAFE_NAME_VALID, is_safe_name

# What defines a run (and which paper table it feeds); paths, logging, force and hydra settings do not.
# The method node is hashed unresolved, so a top-level node it reads through ${oc.select:...} (salora_gates) is part
# of the identity too: otherwise two SaLoRA settings would share a run dir and the second would be skipped.
# ``arm`` and ``compare`` (bench.compare) exist only in comparison runs; a key a config lacks is left out, so older run
# ids stay what they were.
IDENTITY_KEYS = ("method", "model", "task", "trainer", "scale", "seed", "deterministic", "report", "restarts",
                 "salora_gates", "arm", "compare")


def run_identity(root) -> dict:
    """What defines a run, unresolved: interpolations stay as written (``${paths.shared_data}/...``), so the same run
    has the same identity on every machine and in every working directory."""
    identity = {k: OmegaConf.to_container(root[k], resolve=False) if OmegaConf.is_config(root[k]) else root[k]
                for k in IDENTITY_KEYS if k in root}
    if bool(root.get("smoke")):  # only when set: every run id from before the flag existed stays what it was
        identity["smoke"] = True
    return identity


def run_id(*, _root_) -> str:
    identity = run_identity(_root_)
    smoke = bool(_root_.get("smoke"))
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    m = _root_.method
    for key, value in (("method.name", m.name), ("model.name", _root_.model.name), ("task.name", _root_.task.name),
                       ("scale.name", _root_.scale.name)):
        if not is_safe_name(value):  # the preflight says so in one line first; this guards HYDRA_FULL_ERROR=1 runs
            raise ValueError(f"{key}={value!r} cannot name a run directory; valid: {SAFE_NAME_VALID}")
    return (f"{m.name}-r{m.r}_{_root_.model.name}_{_root_.task.name}_{_root_.scale.name}_s{_root_.seed}_{digest}"
            + ("_smoke" if smoke else ""))


if not OmegaConf.has_resolver("run_id"):
    OmegaConf.register_new_resolver("run_id", run_id)
if not OmegaConf.has_resolver("mul"):
    # ${mul:${compare.budget},2}: a comparison arm's size from the shared parameter budget (conf/arm/*.yaml)
    OmegaConf.register_new_resolver("mul", lambda a, b: int(round(float(a) * float(b))))
if not OmegaConf.has_resolver("cwd"):
    # ${hydra:runtime.cwd} is unset while a multirun resolves its sweep dir; the launch dir is the same thing.
    OmegaConf.register_new_resolver("cwd", os.getcwd)
