# `make run` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/config.yaml
CORES  ?= all

# the galaxy name of CONFIG (results/<galaxy>/), read with the venv's PyYAML
GALAXY  = $(shell $(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['galaxy'])")
REPORT  = results/$(GALAXY)/report.zip

.PHONY: run test test-slurm lint dryrun clean report robustness

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# Before any job: the config checked (YAML errors with file and line, keys named), then
# the lock a killed run left removed if no other Snakemake works here; the jobs that run
# left half done are redone (--rerun-incomplete). See docs/reliability.md.
run: $(STAMP)
	$(BIN)/python -m starclusters.config $(CONFIG)
	$(BIN)/python -m starclusters.locks --configfile $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --rerun-incomplete
	$(BIN)/snakemake --configfile $(CONFIG) --report $(REPORT)

# The robustness matrix (docs/robustness.md) over CONFIG's finished run: the validation galaxy
# observed with one factor changed at a time (config/robustness.yaml; ~2 min per factor).
robustness: $(STAMP)
	$(BIN)/python -m starclusters.config $(CONFIG) config/robustness.yaml
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete \
		--configfile $(CONFIG) config/robustness.yaml -- results/$(GALAXY)/robustness/robustness.parquet
	$(BIN)/snakemake --configfile $(CONFIG) config/robustness.yaml --report $(REPORT)

# every figure with its caption, browsable: unzip and open report/report.html
report: $(STAMP)
	$(BIN)/snakemake --configfile $(CONFIG) --report $(REPORT)

test: $(STAMP)
	$(BIN)/python -m pytest

# The Slurm path alone: job resources (dry runs) and the tiny workflow on a one-node Slurm
# cluster this target installs and starts (root on Debian/Ubuntu; ~26 min on 2 cores;
# skipped elsewhere). `make test` runs it too. docs/slurm.md
test-slurm: $(STAMP)
	$(BIN)/python -m pytest -ra tests/test_slurm.py

lint: $(STAMP)
	$(BIN)/ruff check src workflow tests benchmarks
	$(BIN)/ruff format --check src workflow tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

dryrun: $(STAMP)
	$(BIN)/python -m starclusters.config $(CONFIG)
	$(BIN)/snakemake -n --cores $(CORES) --configfile $(CONFIG)

clean:
	rm -rf results .snakemake
