"""`python -m bench.perf_table4 [key=value ...]`: SaLoRA's Table 4, the cost table of its spec (bench/papers/salora.py),
measured by bench.perf.paper_tables (`make perf-salora` runs the same)."""

from __future__ import annotations

import sys

from .perf.paper_tables import main as paper_tables

if __name__ == "__main__":
    paper_tables(["salora", *sys.argv[1:]], command="python -m bench.perf_table4")
