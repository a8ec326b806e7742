# lorabench — `make reproduce` runs the papers' experiments, `make test` runs the suite.
# Both create (or reuse) .venv. Without a GPU the CPU build of torch is installed first;
# set TORCH_SPEC to pick another build, e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu".
#
# Every variable below reaches a recipe through the environment, never pasted into its text, so no value can
# become a shell command; bench.sweep.launch validates SCALE, SEEDS, LAUNCHER and JOBS in one line each (exit 2).
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
SCALE      ?= small
LAUNCHER   ?=
JOBS       ?= 2
SEEDS      ?=
PAPERS     ?=
STAMP      := $(VENV)/.installed
export PYTHON TORCH_SPEC SCALE LAUNCHER JOBS SEEDS PAPERS

.PHONY: setup test check smoke reproduce report compare perf demo wheel-check clean

setup: $(STAMP)

# TORCH_SPEC is split into words by the shell (it may carry --index-url), never re-read as a command line.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || "$$PYTHON" -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/python -m pip install torch; \
	  else $(BIN)/python -m pip install $$TORCH_SPEC; fi; fi
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# JOBS pytest-xdist workers, one thread each, a test file per worker (its module fixtures stay shared).
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n "$$JOBS" --dist loadfile

# The specs, their claims' registrations, and every committed record held to the run id the current configs give its
# job (a record an edited config no longer names would sit beside the fresh run's): a few minutes, in CI.
check: setup
	$(BIN)/python -m bench.papers check

# Every job of every paper-scale experiment (one seed / rank / grid point each; every model × task × method) on a
# miniature of its model and the local data: proves the paper scale runs, on a CPU (bench/sweep/smoke.py). PAPERS= picks.
smoke: setup
	$(BIN)/python -m bench.smoke $$PAPERS

# One target per paper (bench.papers list names them). Its experiments come from its spec (bench/papers/<paper>.py)
# for the tier SCALE (small: the claims' tier, the default; tiny: the one-minute smoke; paper: the published
# configuration, with LAUNCHER=slurm through submitit); then the report: records into results/<paper>/records/,
# tables, figures, claims. A failed sweep does not stop the others; the command then exits 1 naming it.
reproduce: setup
	$(BIN)/python -m bench.reproduce

reproduce-%: export PAPER = $*
reproduce-%: setup
	$(BIN)/python -m bench.reproduce "$$PAPER"

# The comparison no paper has (bench/compare.py): every method on one task per paper's family at two matched
# trainable-parameter budgets, 3 seeds, at the family's rate; the tuning stage (each arm's rate from a grid on a
# validation split) and the final seeds at the chosen rates; then results/compare/ (its Scale and compute section:
# what each stage costs). SCALE=paper LAUNCHER=slurm: the one-rate grid on a cluster.
compare: setup
	$(BIN)/python -m bench.compare run

# Rebuild results/ from the committed records (and any finished runs in runs/); never trains.
report: setup
	$(BIN)/python -m bench.report

demo: setup
	HYDRA_FULL_ERROR=0 $(BIN)/python -m bench.train -m experiment=demo scale=tiny

# Cost per step and memory of every method vs our LoRA, peft LoRA and the frozen-base floor (≤ 10 min on 2 cores).
perf: setup
	$(BIN)/python -m bench.perf

# A paper's cost tables (its spec's perf_tables; e.g. SaLoRA's Table 4, LoRA vs SaLoRA step time and memory by batch on
# RoBERTa-base/-large shapes) into results/<paper>/: make perf-salora.
perf-%: export PAPER = $*
perf-%: setup
	$(BIN)/python -m bench.perf.paper_tables "$$PAPER"

# The wheel a cluster user installs: built here, installed into a fresh venv, started from outside the checkout
# (the configs ship inside the package).
WHEEL_DIR := build/wheel-check
wheel-check: setup
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL_DIR) .
	"$$PYTHON" -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $$TORCH_SPEC
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(WHEEL_DIR)/lorabench-*.whl
	cd "$$(mktemp -d)" && $(CURDIR)/$(WHEEL_DIR)/venv/bin/lorabench-train --cfg job experiment=mora_uuid scale=paper \
	  | grep -q "paper: mora" && echo "wheel-check: lorabench-train starts from an installed wheel"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build
