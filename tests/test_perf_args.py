"""`bench.perf` holds its arguments to the suite's promise: one line naming key, value and what is valid; exit 2."""

from __future__ import annotations

import pytest

from bench.perf.__main__ import main
from bench.perf.config import model_config, parse_args
from bench.errors import UserError

BAD = [
    (["perf.modle=perf_llama"], ["perf.modle", "valid:", "ranks"]),
    (["quick"], ["'quick' is not key=value"]),
    (["perf.model=gpt5"], ["perf.model='gpt5'", "stories260k"]),
    (["perf.device=cuda"], ["perf.device='cuda'", "no CUDA device"]),
    (["perf.dtype=float8"], ["perf.dtype='float8'", "bfloat16"]),
    (["perf.ranks=[0]"], ["perf.ranks", "integers >= 1"]),
    (["perf.batch=0"], ["perf.batch=0", "an integer >= 1"]),
    (["perf.batch=abc"], ["perf.batch='abc'", "an integer >= 1"]),
    (["perf.quick=maybe"], ["quick", "valid"]),
]


@pytest.mark.parametrize("argv,words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_perf_argument_is_one_line(argv, words):
    if argv == ["perf.device=cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present: perf.device=cuda is valid here")
    with pytest.raises(UserError) as err:
        parse_args(argv)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words), str(err.value)


def test_an_unwritable_out_dir_fails_before_any_benchmarking(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        main([f"perf.out_dir={blocker / 'results'}", "quick=true"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "perf.out_dir=" in err[0]


def test_a_local_model_of_the_suite_gives_its_shape(tmp_path, monkeypatch):
    from tests.conftest import SHARED

    monkeypatch.setenv("LORABENCH_DATA", str(SHARED / "data"))
    config, targets = model_config(parse_args(["perf.model=stories260k", f"perf.out_dir={tmp_path}"]))
    assert config.hidden_size == 64 and "q_proj" in targets
