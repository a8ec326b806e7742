"""LM pretraining (MoRA §5.3, Table 3 / Fig. 4): C4 at paper scale, a local text corpus at tiny scale;
eval loss and perplexity. Text is tokenised and packed into fixed-length blocks."""

from __future__ import annotations

from .registry import TaskSpec, register


def c4(record: dict) -> dict:
    return {"text": record["text"]}


def alpaca_text(record: dict) -> dict:
    """The tiny-scale corpus: real English from the Alpaca sample (instruction, input and output as prose)."""
    parts = [record.get("instruction", ""), record.get("input", ""), record.get("output", "")]
    return {"text": "\n".join(p for p in parts if p)}


def text_or_alpaca(record: dict) -> dict:
    return c4(record) if "text" in record else alpaca_text(record)


register(TaskSpec(name="c4", family="pretrain", kind="lm", paper="mora", metric="perplexity", scorer="suite:perplexity",
                  hub_dataset="allenai/c4", hub_config="en", hub_splits={"train": "train", "eval": "validation"},
                  local_fields=(), hub_fields=("text",), convert_local=text_or_alpaca, convert_hub=c4, stream=True))
