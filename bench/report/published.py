"""The papers' published numbers: one CSV per table (bench/published/<paper>_table*.csv), one row per cell with its
source and status; a malformed row stops the report with one line naming file, line and field."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UserError
from ..paths import PUBLISHED_DIR

PUBLISHED_COLUMNS = ("paper", "table", "model", "task", "rank", "method", "setting", "metric", "value", "std",
                     "source", "status", "primary_url", "note")


def load_published(paper: str, directory: Path = PUBLISHED_DIR) -> dict[str, list[dict]]:
    """{table: rows} for a paper; a malformed row is a UserError naming file, line and field."""
    tables: dict[str, list[dict]] = {}
    for path in sorted(directory.glob(f"{paper}_table*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in PUBLISHED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"published table {path.name}: missing columns {missing}; expected {list(PUBLISHED_COLUMNS)}")
            for line, row in enumerate(reader, start=2):
                if None in row or any(v is None for v in row.values()):
                    raise UserError(f"published table {path.name} line {line}: wrong number of fields; expected {len(PUBLISHED_COLUMNS)}")
                if row["paper"] != paper:
                    raise UserError(f"published table {path.name} line {line}: paper={row['paper']!r}; valid: {paper!r}")
                for key in ("value", "std"):
                    if row[key].strip():
                        try:
                            float(row[key])
                        except ValueError:
                            raise UserError(f"published table {path.name} line {line}: {key}={row[key]!r} is not a number; "
                                            "valid: a number or empty (not transcribed)") from None
                if not row["metric"].strip():
                    raise UserError(f"published table {path.name} line {line}: metric is empty; valid: a metric name")
                tables.setdefault(row["table"], []).append(row)
    return tables
