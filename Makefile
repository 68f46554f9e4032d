# One-command set-up: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
CONSTRAINTS := -c requirements/constraints.txt

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt requirements/constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet $(CONSTRAINTS) -r requirements/base.txt -r requirements/dev.txt
	$(PIP) install --quiet $(CONSTRAINTS) --no-build-isolation pyradiomics==3.0.1
	$(PIP) install --quiet $(CONSTRAINTS) --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mskai demo --out demo-output

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest Testing -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) Testing/benchmarks/run_benchmarks.py

clean:
	rm -rf $(VENV) demo-output
