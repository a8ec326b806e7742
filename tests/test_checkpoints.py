"""Checkpoints are verified before a run resumes from them: a damaged newest one is set aside, the previous used."""

from __future__ import annotations

import json

import pytest

from bench.run.trainer import COMPLETE, checkpoint_damage, checkpoint_digests, last_complete_checkpoint
from tests.bench_helpers import FAST, run_inprocess


def _checkpoint(root, step: int, payload: bytes):
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(payload)
    (ckpt / "optimizer.pt").write_bytes(payload * 2)
    (ckpt / COMPLETE).write_text(json.dumps({"step": step, "sha256": checkpoint_digests(ckpt)}))
    return ckpt


def test_a_truncated_file_in_the_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    older, newest = _checkpoint(tmp_path, 8, b"older" * 100), _checkpoint(tmp_path, 16, b"newest" * 100)
    assert checkpoint_damage(newest) is None and last_complete_checkpoint(tmp_path) == newest
    (newest / "optimizer.pt").write_bytes(b"newest")  # truncated: the marker is still there
    assert last_complete_checkpoint(tmp_path) == older
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "checkpoint-16 is damaged (optimizer.pt does not match its checksum)" in out[0]
    assert not newest.exists() and (tmp_path / "broken-checkpoint-16" / "optimizer.pt").exists()


def test_a_missing_file_or_an_unreadable_marker_is_damage_and_none_left_means_start_over(tmp_path):
    ckpt = _checkpoint(tmp_path, 4, b"x" * 10)
    (ckpt / "model.safetensors").unlink()
    assert checkpoint_damage(ckpt) == "model.safetensors is missing"
    assert last_complete_checkpoint(tmp_path) is None


@pytest.mark.parametrize("marker", ["3", "[]", "null", '{"step": 3}', '{"step": 3, "sha256": []}'])
def test_a_marker_without_checksums_vouches_for_nothing(tmp_path, marker):
    ckpt = tmp_path / "checkpoint-3"
    ckpt.mkdir()
    (ckpt / "bench_state.pt").write_bytes(b"x")
    (ckpt / COMPLETE).write_text(marker)
    assert "lists no checksums" in checkpoint_damage(ckpt)
    assert last_complete_checkpoint(tmp_path) is None


def test_a_file_the_marker_does_not_list_or_a_name_outside_the_checkpoint_is_damage(tmp_path):
    ckpt = _checkpoint(tmp_path, 4, b"x" * 10)
    (ckpt / "extra.pt").write_bytes(b"planted")
    assert checkpoint_damage(ckpt) == "extra.pt is not listed in its COMPLETE marker"
    (ckpt / "extra.pt").unlink()
    (tmp_path / "outside").write_bytes(b"o")
    marker = json.loads((ckpt / COMPLETE).read_text())
    marker["sha256"]["../outside"] = "0" * 64
    (ckpt / COMPLETE).write_text(json.dumps(marker))
    assert "outside the checkpoint" in checkpoint_damage(ckpt)


def test_reruns_from_the_final_or_past_a_damaged_checkpoint_end_as_the_uninterrupted_run(tmp_path):
    reference, _ = run_inprocess(FAST, tmp_path / "ref")
    _, run_dir = run_inprocess(FAST, tmp_path / "again")
    newest = run_dir / "checkpoints" / "checkpoint-16"
    assert json.loads((newest / COMPLETE).read_text())["step"] == 16

    def same_as_reference():
        result, _ = run_inprocess(FAST, tmp_path / "again")
        assert result["steps"] == reference["steps"] == 16
        assert result["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]
        assert result["train_loss"] == reference["train_loss"]

    (run_dir / "result.json").unlink()  # killed after the last checkpoint, before the result: no extra step
    same_as_reference()
    (newest / "bench_state.pt").write_bytes(b"")  # damaged after its marker was written
    (run_dir / "result.json").unlink()
    same_as_reference()
    assert (run_dir / "checkpoints" / "broken-checkpoint-16").is_dir()


def test_a_full_disk_mid_checkpoint_is_one_line_and_the_rerun_ends_as_the_uninterrupted_run(tmp_path, monkeypatch):
    import errno

    import pytest

    from bench.errors import DiskFull
    from bench.run.trainer import BenchState

    reference, _ = run_inprocess(FAST, tmp_path / "ref")
    original = BenchState.on_save

    def disk_full_at_the_last_save(self, args, state, control, **kwargs):
        if state.global_step == 16:  # HF's files of checkpoint-16 are written; ours hit the full disk
            raise OSError(errno.ENOSPC, "No space left on device", f"{args.output_dir}/checkpoint-16/bench_state.pt.tmp")
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(BenchState, "on_save", disk_full_at_the_last_save)
    with pytest.raises(DiskFull) as err:
        run_inprocess(FAST, tmp_path / "full")
    message = str(err.value)
    assert "\n" not in message and "no space left on the device writing" in message and "checkpoint-16" in message
    assert not (tmp_path / "full" / "run" / "checkpoints" / "checkpoint-16" / COMPLETE).exists()
    monkeypatch.setattr(BenchState, "on_save", original)
    result, _ = run_inprocess(FAST, tmp_path / "full")  # resumes from checkpoint-8; the half-written 16 is ignored
    assert result["train_loss"] == reference["train_loss"]
    assert result["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]


def test_force_retrains_from_step_zero_and_keeps_the_old_run_until_the_new_one_finishes(tmp_path, monkeypatch, capsys):
    import pytest

    import bench.run.steps

    reference, run_dir = run_inprocess(FAST, tmp_path)
    finished = (run_dir / "result.json").read_bytes()

    def killed(*args, **kwargs):
        raise RuntimeError("killed after training, before the result")

    monkeypatch.setattr(bench.run.steps, "save_final_state", killed)
    with pytest.raises(RuntimeError):
        run_inprocess([*FAST, "force=true"], tmp_path)
    assert not (run_dir / "result.json").exists()
    assert (run_dir / "replaced" / "result.json").read_bytes() == finished  # the finished run, kept aside
    monkeypatch.undo()
    capsys.readouterr()
    forced, _ = run_inprocess([*FAST, "force=true"], tmp_path)
    assert "resume:" not in capsys.readouterr().out  # from step 0: neither the finished run nor the killed attempt
    assert forced["train_loss"] == reference["train_loss"]
    assert forced["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]
    assert not (run_dir / "replaced").exists()


def test_an_adapter_checkpoint_holds_what_trains_and_resumes_bitwise(tmp_path):
    """No copy of the frozen base: the checkpoint's weights file is the method's trained state (safetensors), a few
    per cent of the model, and a run resumed from it ends as the uninterrupted run, loss for loss."""
    from safetensors.torch import load_file

    from bench.run.trained_state import TRAINED_STATE

    reference, _ = run_inprocess(FAST, tmp_path / "ref")
    _, run_dir = run_inprocess(FAST, tmp_path / "again")
    checkpoint = run_dir / "checkpoints" / "checkpoint-8"
    names = {p.name for p in checkpoint.iterdir()}
    assert TRAINED_STATE in names and not names & {"model.safetensors", "pytorch_model.bin"}
    state = load_file(str(checkpoint / TRAINED_STATE))
    assert state and all("lora_" in key for key in state)   # LoRA's factors, nothing of the base
    assert sum(t.numel() for t in state.values()) == reference["trainable_params"]
    (run_dir / "result.json").unlink()
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-16")   # killed between the two checkpoints
    resumed, _ = run_inprocess(FAST, tmp_path / "again")
    assert resumed["train_loss"] == reference["train_loss"]
    assert resumed["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]


def test_a_chain_checkpointed_after_its_knot_keeps_the_folded_base_and_resumes_bitwise(tmp_path):
    from safetensors.torch import load_file

    from bench.run.trained_state import TRAINED_STATE

    chain = [*FAST, "method=cola", "method.knots=[0.25]"]   # the knot at step 4, checkpoints at 8 and 16
    reference, _ = run_inprocess(chain, tmp_path / "ref")
    _, run_dir = run_inprocess(chain, tmp_path / "again")
    state = load_file(str(run_dir / "checkpoints" / "checkpoint-8" / TRAINED_STATE))
    assert any(key.endswith("base_layer.weight") for key in state)   # the knot folded link 1 into the base
    (run_dir / "result.json").unlink()
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-16")
    resumed, _ = run_inprocess(chain, tmp_path / "again")
    assert resumed["train_loss"] == reference["train_loss"]
    assert resumed["metrics"]["eval_loss"] == reference["metrics"]["eval_loss"]
