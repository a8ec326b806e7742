"""Pages from run records (``python -m bench.report``, ``python -m bench.compare``): nothing here trains, and nothing
here knows a paper — a spec (bench/papers/<paper>.py) is handed in and says what its tables, figures and claims are.

published   the papers' published cells (bench/published/*.csv)
records     run directories → compact records → ``Run`` objects, and the records that cannot be used
labels      what a row or a line is called (model, method, rank, setting of a run)
metrics     a run's number for a published metric name (readers a spec maps its metric names to)
tables      the published layout with the reproduced value beside each cell, and the stand-in block
figures     drawing helpers (curves, bands, Pareto plots) the specs' figures are made of
claims      a claim as data and its test on the runs
leaderboard a comparison spec's page (boards, average ranks, coverage)
page        a paper's page, the index, the lines every page ends with
__main__    ``python -m bench.report``
"""
