# The two commands of the README: `make run` (set up + the default benchmark + report)
# and `make test`. Only Python 3.11 with pip is assumed; the rest is installed here (by uv, with
# pip's settings: enginebench/engines/installer.py).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc)

.PHONY: setup run report test lint format clean-results

$(VENV)/.installed: pyproject.toml
	bash tools/bootstrap-system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip uv
	$(BIN)/python -m enginebench.engines.installer -q -e '.[workflow,dev]'
	touch $@

# the Slurm executor plugin is only for the tests and cluster users (`pip install -e '.[slurm]'`)
$(VENV)/.installed-slurm: $(VENV)/.installed
	$(BIN)/python -m enginebench.engines.installer -q -e '.[workflow,dev,slurm]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/snakemake --profile profiles/local --cores $(CORES)
	$(BIN)/snakemake --profile profiles/local --report results/report.html

report: setup
	$(BIN)/snakemake --profile profiles/local --report results/report.html

test: setup $(VENV)/.installed-slurm
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check enginebench tests benchmarks workflow/scripts
	$(BIN)/ruff format --check enginebench tests benchmarks workflow/scripts
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: setup
	$(BIN)/ruff format enginebench tests benchmarks workflow/scripts
	$(BIN)/snakefmt Snakefile workflow/rules

clean-results:
	rm -rf results logs
