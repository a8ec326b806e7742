"""Read task data from local files (json, jsonl, csv, tsv, parquet) or the hub, as lists of dict records."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import UserError
from .hub_pins import revision_of

FORMATS = ("json", "jsonl", "csv", "tsv", "parquet")
# Fields the tokenizer reads as text: a number there is bad input, not something to crash on later.
TEXT_FIELDS = frozenset({"instruction", "input", "output", "question", "sentence", "sentence1", "sentence2", "premise",
                         "hypothesis", "passage", "paragraph", "text", "query", "prompt", "response", "goal", "ctx"})


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise UserError(f"task.format={declared!r}; valid: {list(FORMATS)}")
        return declared
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot tell the format of {str(path)!r} from its extension; "
                        f"set task.format to one of {list(FORMATS)}")
    return suffix


def read_local(path: str | Path, fmt: str | None = None, header: bool = True,
               columns: Sequence[str] | None = None, key: str = "data file",
               fields: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Records of a local file. ``columns`` names the fields of a header-less csv/tsv (GLUE CoLA)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{key}={str(path)!r}: no such file; expected a json/jsonl/csv/tsv/parquet file with fields {list(fields)}")
    fmt = detect_format(path, fmt)
    try:
        if fmt == "json":
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            if isinstance(data, dict) and "data" in data:
                data = data["data"]
            if not isinstance(data, list):
                raise ValueError("expected a JSON list of records")
            return data
        if fmt == "jsonl":
            return [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if fmt in ("csv", "tsv"):
            # GLUE tsv files contain bare quotes inside sentences: never treat quotes as field delimiters.
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",", quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
                rows = list(reader)
            if not rows:
                return []  # an empty file: require_fields says so in one line
            if columns:
                names, body = list(columns), rows[1:] if header else rows
            else:
                names, body = rows[0], rows[1:]
            return [dict(zip(names, row)) for row in body if row]
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    except (ValueError, UnicodeDecodeError, csv.Error, OSError) as err:
        raise UserError(f"{key}={str(path)!r} is unreadable as {fmt} ({str(err).splitlines()[0]}); "
                        f"expected fields {list(fields)}") from err


def read_hub(dataset: str, config: str | None, split: str) -> list[dict[str, Any]]:
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset, config, split=split, revision=revision_of(dataset))
    except Exception as err:  # datasets raises many types for "no network" / "no such dataset"
        raise UserError(f"hub dataset {dataset!r} (config {config!r}, split {split!r}) cannot be loaded: "
                        f"{str(err).splitlines()[0]}; point task.data_files.{split}=PATH at a local copy") from err
    return [dict(r) for r in ds]


class Stream:
    """A training corpus read in datasets' streaming mode: iterated record by record, never held in memory (C4's train
    split is ~365M documents), converted to the task's canonical form, in its own order."""

    convert: Any

    def _open(self):
        raise NotImplementedError

    def __iter__(self):
        for record in self._open():
            yield self.convert(dict(record))

    def take(self, n: int) -> list[dict[str, Any]]:
        """The corpus's first ``n`` records: a fixed slice, the same for every seed and run."""
        return list(itertools.islice(iter(self), n))


STREAM_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".txt": "text"}


class LocalStream(Stream):
    """Local shards of a streamed corpus (C4's ``en/c4-train.*.json.gz`` copied to a cluster without hub access),
    streamed as the hub's would be: ``task.data_files.train`` may be a glob or a list."""

    def __init__(self, paths: str | list[str], fmt: str | None, convert):
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        suffix = Path(self.paths[0].removesuffix(".gz").removesuffix(".zst")).suffix
        self.builder = {"jsonl": "json"}.get(fmt or "", fmt) or STREAM_BUILDERS.get(suffix)
        if self.builder is None:
            raise UserError(f"task.data_files.train={self.paths[0]!r}: no streaming reader for {suffix!r}; valid: "
                            f"{', '.join(sorted(STREAM_BUILDERS))} (optionally .gz), or task.format=json|parquet|csv")
        self.convert = convert

    def _open(self):
        from datasets import load_dataset

        try:
            return load_dataset(self.builder, data_files=self.paths, split="train", streaming=True)
        except (FileNotFoundError, ValueError) as err:
            raise UserError(f"task.data_files.train={self.paths[0]!r} cannot be streamed: {str(err).splitlines()[0]}; "
                            "valid: existing local shards (a glob or a list of files)") from err

    def __repr__(self) -> str:
        return f"LocalStream({self.paths!r})"


class HubStream(Stream):
    """A hub split, streamed."""

    def __init__(self, dataset: str, config: str | None, split: str, convert):
        self.dataset, self.config, self.split, self.convert = dataset, config, split, convert

    def _open(self):
        try:
            from datasets import load_dataset

            return load_dataset(self.dataset, self.config, split=self.split, streaming=True,
                                revision=revision_of(self.dataset))
        except Exception as err:  # as read_hub: no network, no such dataset
            raise UserError(f"hub dataset {self.dataset!r} (config {self.config!r}, split {self.split!r}) cannot be "
                            f"streamed: {str(err).splitlines()[0]}; point task.data_files.{self.split}=PATH at a local "
                            "copy") from err

    def __repr__(self) -> str:
        return f"HubStream({self.dataset!r}, {self.config!r}, {self.split!r})"


def require_fields(records: list[dict], fields: Sequence[str], source: str) -> None:
    if not records:
        raise UserError(f"{source} has no records; expected fields {list(fields)}")
    if not isinstance(records[0], dict):
        raise UserError(f"{source} holds {type(records[0]).__name__}s, not records; expected fields {list(fields)}")
    missing = [f for f in fields if f not in records[0]]
    if missing:
        raise UserError(f"{source} lacks fields {missing}; expected fields {list(fields)}, found {sorted(records[0])}")
    for i, record in enumerate(records):
        for name in TEXT_FIELDS.intersection(fields):
            value = record.get(name)
            if isinstance(value, (int, float)):  # bool included; nested records (MultiRC's passage) are the converters'
                raise UserError(f"{source}: record {i} has {name}={value!r} ({type(value).__name__}); valid: a string "
                                "(the tokenizer reads it as text)")
