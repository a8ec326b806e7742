"""Bad hyperparameters raise a one-line ValueError naming the key, the bad value and what is valid;
conf/method YAMLs instantiate to the same objects as build_method."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from methods import METHODS, build_method

CONF = Path(__file__).resolve().parents[1] / "conf"


def linear_model(d=16, k=12) -> nn.Module:
    model = nn.Sequential()
    model.add_module("proj", nn.Linear(k, d))
    return model


BAD = [
    ("lora", dict(r=0), "r", "0"),
    ("lora", dict(r=-3), "r", "-3"),
    ("lora", dict(r=2.5), "r", "2.5"),
    ("mora", dict(r=0), "r", "0"),
    ("lora", dict(alpha=-1), "alpha", "-1"),
    ("lora", dict(dropout=1.5), "dropout", "1.5"),
    ("mora", dict(mora_type="diagonal"), "mora_type", "'diagonal'"),
    ("salora", dict(target_density=0.0), "target_density", "0.0"),
    ("salora", dict(target_density=1.5), "target_density", "1.5"),
    ("salora", dict(t_start=0.5, t_end=0.4), "t_end", "0.4"),
    ("salora", dict(t_start=0.4, t_end=0.4), "t_end", "0.4"),
    ("salora", dict(temperature=0), "temperature", "0"),
    ("cola", dict(knots=[1.2]), "knots", "[1.2]"),
    ("cola", dict(knots=[0.0]), "knots", "[0.0]"),
    ("cola", dict(knots=[0.6, 0.3]), "knots", "[0.6, 0.3]"),
    ("cola", dict(r=8, ranks=[4, 2]), "ranks", "[4, 2]"),
    ("cola", dict(knots=[0.5], ranks=[8]), "ranks", "[8]"),
    ("cola", dict(link_init="xavier"), "link_init", "'xavier'"),
    ("relora", dict(restart_every=0), "restart_every", "0"),
]


@pytest.mark.parametrize("method,kwargs,key,value", BAD)
def test_bad_hyperparameter_gives_one_line_naming_key_value_and_choices(method, kwargs, key, value):
    with pytest.raises(ValueError) as err:
        build_method(method, target_modules=["proj"], **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert f"{key}={value}" in message and "valid:" in message


@pytest.mark.parametrize("method", ["lora", "olora", "cola", "salora", "relora"])
def test_rank_larger_than_the_layer_is_rejected_for_the_lora_family(method):
    m = build_method(method, r=13, target_modules=["proj"])
    with pytest.raises(ValueError, match=r"r=13; valid: 1 <= r <= min\(out, in\) = 12 for layer proj"):
        m.apply(linear_model())


def test_target_modules_matching_nothing_lists_the_linear_layers():
    m = build_method("lora", target_modules=["q_proj"])
    with pytest.raises(ValueError, match=r"target_modules=\['q_proj'\]; valid: .*\['proj'\]"):
        m.apply(linear_model())


def test_unknown_method_and_unknown_hyperparameter():
    with pytest.raises(ValueError, match=r"name='loraa'; valid: \["):
        build_method("loraa")
    with pytest.raises(ValueError, match=r"lora: invalid hyperparameter .*rr.*; valid: .*'r'"):
        build_method("lora", rr=8)


def test_target_modules_regex_matches_full_names_like_peft():
    model = nn.Sequential()
    model.add_module("a", nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    m = build_method("lora", r=2, target_modules=r"a\.1")
    m.apply(model)
    names = [n for n, _ in m.adapted_layers(model)]
    assert names == ["a.1"]


def method_configs() -> list[str]:
    return sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


@pytest.mark.parametrize("config_name", method_configs())
def test_method_yaml_instantiates_to_build_method(config_name):
    with initialize_config_dir(config_dir=str(CONF / "method"), version_base="1.3"):
        cfg = compose(config_name=config_name)
    method = instantiate(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True)
    kwargs = {k: v for k, v in plain.items() if not k.startswith("_") and k != "name"}
    expected = build_method(cfg.name, **kwargs)
    assert type(method) is METHODS[cfg.name] and method.hparams() == expected.hparams()
    if config_name == "cola_stepdown":
        assert method.ranks == [method.r, 4]
