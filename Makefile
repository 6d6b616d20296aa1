# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11 and pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-output

.PHONY: demo test lint format bench install clean docs kernels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency list or the tested constraints change.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP) kernels

# Compile the numba analysis kernels ahead into the user's kernel cache (a second or two
# when they are already there), so neither a first `make demo` nor each pytest-xdist
# worker of `make test` pays the compiler; concurrent runs take turns on a lock.
kernels: $(STAMP)
	$(BIN)/python -m ssb_beamline.analysis._jit_ahead

demo: $(STAMP) kernels
	$(BIN)/ssb-beamline demo --out $(DEMO_OUT)

test: $(STAMP) kernels
	$(BIN)/python -m ruff check ssb_beamline tests benchmarks
	$(BIN)/python -m ruff format --check ssb_beamline tests benchmarks
	$(BIN)/lint-imports
	# 4 workers on 2 cores: most end-to-end tests wait on servers, IOCs and subprocesses
	# (with 2 workers the suite took 1066 s on this machine, with 4: 771 s); one file per
	# worker, the longest files first (tests/conftest.py LONGEST_FIRST), not xdist's order
	$(BIN)/python -m pytest -n 4 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/python -m ruff check ssb_beamline tests benchmarks

format: $(STAMP)
	$(BIN)/python -m ruff format ssb_beamline tests benchmarks
	$(BIN)/python -m ruff check --fix ssb_beamline tests benchmarks

# The documentation site (tests/test_docs.py builds it too, as part of `make test`).
docs: $(STAMP)
	$(BIN)/python -m sphinx -E -W --keep-going -n -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_skeleton.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache docs/_build docs/reference/api docs/reference/cli.rst
