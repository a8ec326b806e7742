"""The suite's batched generation (bench/evaluate.py: greedy_answers) against HF's generate on each prompt alone:
length-sorted batches and the beams' shared prompt cache must change the cost, never the text."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM

from bench.evaluate import greedy_answers, shared_prompt_cache
from bench.run.models import load_tokenizer

PROMPTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.",
    "Tom had a red ball.",
    "One day, a big bird flew",
    "The sun was shining and the children ran to the river to look at the fish. Mom said they could stay until",
    "Sam",
]


@pytest.fixture(scope="module")
def model_and_tokenizer(stories_dir):
    tok = load_tokenizer(OmegaConf.create({"tokenizer": str(stories_dir), "source": "hub", "path": str(stories_dir)}))
    model = AutoModelForCausalLM.from_pretrained(stories_dir).eval()
    return model, tok


def alone(model, tok, prompt: str, new_tokens: int, beams: int) -> str:
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, num_beams=beams,
                             pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("beams", [1, 4])
def test_batched_generation_equals_each_prompt_generated_alone(model_and_tokenizer, beams):
    model, tok = model_and_tokenizer
    expected = [alone(model, tok, p, 12, beams) for p in PROMPTS]
    assert len(set(expected)) == len(PROMPTS)  # distinct continuations: a shuffled result cannot pass
    # batch 2: the sorted batches mix lengths and pad on the left; order comes back as given
    assert greedy_answers(model, tok, PROMPTS, 12, batch_size=2, num_beams=beams) == expected
    assert tok.padding_side == "right"  # restored for training's collation


def test_the_shared_prompt_cache_holds_every_beam_and_all_but_the_last_prompt_token(model_and_tokenizer):
    model, tok = model_and_tokenizer
    tok.padding_side = "left"
    try:
        enc = tok(PROMPTS[:3], return_tensors="pt", padding=True)
    finally:
        tok.padding_side = "right"
    with torch.no_grad():
        cache = shared_prompt_cache(model, enc, num_beams=4)["cache"]
    assert cache.get_seq_length() == enc.input_ids.shape[1] - 1
    assert cache.layers[0].keys.shape[0] == 3 * 4
    assert shared_prompt_cache(model, enc, num_beams=1) == {}  # greedy: generate's own prefill is already single
