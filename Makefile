# lorabench — `make reproduce` runs the papers' experiments, `make test` runs the suite.
# Both create (or reuse) .venv. Without a GPU the CPU build of torch is installed first;
# set TORCH_SPEC to pick another build, e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu".
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
SCALE      ?= tiny
LAUNCHER   ?= basic
STAMP      := $(VENV)/.installed

.PHONY: setup test reproduce report perf demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/python -m pip install torch; \
	  else $(BIN)/python -m pip install $(TORCH_SPEC); fi; fi
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# One target per paper: its experiments (Hydra multirun; SCALE=tiny offline CPU, SCALE=paper the published
# configuration; LAUNCHER=slurm submits through submitit), then the report from the run records.
EXP_SUFFIX := $(if $(filter tiny,$(SCALE)),_tiny,)
EXPERIMENTS_olora  := olora_table1 olora_fig2
EXPERIMENTS_cola   := cola_table2 cola_chain cola_stepdown
EXPERIMENTS_salora := salora_table1 salora_ablation salora_sweeps
EXPERIMENTS_mora   := mora_uuid mora_operators mora_pretrain

reproduce: reproduce-olora reproduce-cola reproduce-salora reproduce-mora

reproduce-%: setup
	@test -n "$(EXPERIMENTS_$*)" || { echo "error: unknown paper '$*'; valid: olora, cola, salora, mora" >&2; exit 2; }
	for e in $(EXPERIMENTS_$*); do \
	  $(BIN)/python -m bench.train -m experiment=$${e}$(EXP_SUFFIX) scale=$(SCALE) hydra/launcher=$(LAUNCHER) || exit $$?; \
	done
	$(BIN)/python -m bench.report --paper $*

report: setup
	$(BIN)/python -m bench.report

demo: setup
	HYDRA_FULL_ERROR=0 $(BIN)/python -m bench.train -m experiment=demo scale=$(SCALE) hydra/launcher=$(LAUNCHER)

# Cost per step and memory of every method vs our LoRA, peft LoRA and the frozen-base floor (≤ 10 min on 2 cores).
perf: setup
	$(BIN)/python -m bench.perf

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
