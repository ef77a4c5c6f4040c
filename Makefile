# One virtual environment for everything: `make demo`, `make test`, `make check`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 is the CPU build on this machine kind; any other spec pulls CUDA (GBs).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,sklearn,torch]'
	touch $(STAMP)

demo: $(STAMP)  ## train, save, load, predict on the embedded default
	$(PY) examples/demo.py

test: $(STAMP)  ## the whole test suite (builds the cached MLflow env for interop tests once)
	$(PY) -m pytest -q

check: $(STAMP)  ## lint, format and type checks
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP)  ## side-by-side benchmarks against MLflow
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-yard
