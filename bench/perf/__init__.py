"""`python -m bench.perf`: what each method costs per training step and in memory (bench/perf/__main__.py).

config: settings and the key=value parser; bench: the rows and their timed steps; model: the arithmetic each step
needs; loop: the suite's own Trainer as a row; summary: ratios, intervals, goals and the page.
"""
