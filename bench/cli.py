"""Pre-flight of the command line: unknown group options and keys become one line with the valid choices.

Hydra itself would print a multi-line message and exit 1; researchers sweeping hundreds of runs want the
offending key, its value and what is valid, and exit code 2. ``HYDRA_FULL_ERROR=1`` skips this.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import UserError
from .records import require_writable_dir
from .validate import SAFE_NAME_VALID, is_safe_name, validate_config

from .paths import CONF_DIR
CONFIG_NAME = "train"


def _variants(overrides: list[str]) -> list[list[str]]:
    """One override list per sweep value (others at their first value), so every value gets checked."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [(o.get_key_element(), [str(v) for v in o.sweep_string_iterator()]) for o in parsed if o.is_sweep_override()]
    firsts = [f"{key}={values[0]}" for key, values in sweeps]
    variants = [fixed + firsts]
    for i, (key, values) in enumerate(sweeps):
        for value in values[1:]:
            variants.append(fixed + firsts[:i] + [f"{key}={value}"] + firsts[i + 1:])
    return variants


def _group_options(group: str) -> list[str]:
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group))


def _explain(err: Exception, overrides: list[str]) -> str:
    text = str(err)
    missing = re.search(r"Could not find '([^']+)'", text)
    if isinstance(err, MissingConfigException) and missing:
        group, _, option = missing.group(1).rpartition("/")
        if group:
            return f"{group}={option} is not an option of config group '{group}'; valid: {', '.join(_group_options(group))}"
    bad_key = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if bad_key:
        full = bad_key.group(1)
        parent, _, leaf = full.rpartition(".")
        value = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == full), "?")
        base = compose(CONFIG_NAME)  # the caller holds Hydra initialised
        node = OmegaConf.select(base, parent) if parent else base
        keys = sorted(k for k in node.keys() if not str(k).startswith("_")) if hasattr(node, "keys") else []
        return f"{full}={value}: '{leaf}' is not a key of '{parent or 'the config'}'; valid: {', '.join(map(str, keys))}"
    return text.strip().splitlines()[0]


# Hydra's own command-line flags (hydra/_internal/utils.py get_args_parser), with the short forms it accepts.
HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "--resolve", "-p", "--package", "-r",
               "--run", "-m", "--multirun", "-sc", "--shell-completion", "-cp", "--config-path", "-cn",
               "--config-name", "-cd", "--config-dir", "--experimental-rerun", "-i", "--info")


def _check_flags(argv: list[str]) -> None:
    for arg in argv:
        if "\x00" in arg:  # Hydra's lexer would refuse it with a message holding the raw byte
            key, _, value = arg.partition("=")
            raise UserError(f"{key}={value!r} is not valid; valid: a value without NUL characters")
        if arg.startswith("-") and arg.split("=", 1)[0] not in HYDRA_FLAGS:
            raise UserError(f"option {arg!r} is not valid; valid: overrides key=value and Hydra's flags "
                            "(-m/--multirun, --cfg job|hydra|all, --resolve, --info, --help, --hydra-help)")


def preflight(argv: list[str]) -> Path | None:
    """Raise UserError with one line if the overrides do not compose; else the runs directory they write to."""
    _check_flags(argv)
    if any(a in ("-h", "--help", "--hydra-help", "--info", "-i", "--cfg", "-c") or a.startswith("--cfg") for a in argv):
        return None
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        variants = _variants(overrides)
    except HydraException as err:
        raise UserError(str(err).strip().splitlines()[0]) from err
    _check_group_choices(overrides)
    for variant in variants:
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(CONFIG_NAME, overrides=variant)
        except (HydraException, OmegaConfBaseException) as err:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                message = _explain(err, variant)
            raise UserError(message) from err
        validate_config(cfg)
        _check_method(cfg)
    _check_launcher(overrides)
    _check_output_dirs(overrides)
    return _check_writable(cfg)


def _config_groups() -> set[str]:
    groups = {str(p.relative_to(CONF_DIR)) for p in CONF_DIR.rglob("*") if p.is_dir()}
    return groups | {"hydra/launcher", "hydra/sweeper", "hydra/job_logging", "hydra/hydra_logging"}


def _check_group_choices(overrides: list[str]) -> None:
    """A config group's option names a file in conf/<group>/: '..' or '/' in it would read a file of another group
    (``experiment=../method/lora``) or outside conf/ altogether."""
    groups = _config_groups()
    for override in OverridesParser.create().parse_overrides(overrides):
        group = override.key_or_group
        if group not in groups:
            continue
        values = ([str(v) for v in override.sweep_string_iterator()] if override.is_sweep_override()
                  else [str(override.value())])
        for value in values:
            if value != "null" and not is_safe_name(value):
                raise UserError(f"{group}={value!r} is not valid; valid: {SAFE_NAME_VALID} (an option of config "
                                f"group '{group}')")


def _check_launcher(overrides: list[str]) -> None:
    """submitit's SLURM launcher only fails once the sweep has composed, with a traceback; say it first."""
    if "hydra/launcher=slurm" in overrides and shutil.which("sbatch") is None:
        raise UserError("hydra/launcher=slurm needs a SLURM cluster (no sbatch on PATH); valid here: basic, joblib, "
                        "local (submitit, one process per job)")


def _check_output_dirs(overrides: list[str]) -> None:
    """An output dir given on the command line (hydra.run.dir, hydra.sweep.dir) must be a directory we can write."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and value and "${" not in value:
            require_writable_dir(Path(value), key)


def _check_method(cfg) -> None:
    """Bad hyperparameters fail here in a second, before a sweep launches or a model loads."""
    from methods import build_method

    try:
        kwargs = OmegaConf.to_container(cfg.method, resolve=True)
    except OmegaConfBaseException:
        return  # interpolations that need the run (e.g. paths) are checked when the run starts
    name = kwargs.pop("name")
    for key in [k for k in kwargs if k.startswith("_")]:
        kwargs.pop(key)
    try:
        build_method(name, **kwargs)
    except ValueError as err:
        raise UserError(str(err)) from err


def _check_writable(cfg) -> Path | None:
    try:
        runs_dir = Path(OmegaConf.select(cfg, "paths.runs_dir"))
    except OmegaConfBaseException:
        return None
    return require_writable_dir(runs_dir, "paths.runs_dir", " (set LORABENCH_RUNS or paths.runs_dir=...)")
