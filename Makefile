# One-command set-up: `make demo` and `make test` create .venv on first use.
# Everything installs from one hashed lock file, requirements/lock.txt (`make lock`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
HASHED := --quiet --require-hashes --no-deps
# The installer and what pyradiomics' setup.py imports come first, from the same lock.
BOOTSTRAP := pip|setuptools|wheel|numpy
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k tumor"`.
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench screenshots lock clean

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	awk '/^[a-z]/ { keep = ($$0 ~ /^($(BOOTSTRAP))==/) } keep' $(LOCK) > $(VENV)/bootstrap.txt
	$(PIP) install $(HASHED) -r $(VENV)/bootstrap.txt
	$(PIP) install $(HASHED) --no-build-isolation -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Regenerates the lock from requirements/lock.in (base.txt, dev.txt, the CPU torch pin).
lock: $(STAMP)
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-find-links --no-emit-index-url --pip-args "--no-build-isolation" \
	  -o $(LOCK) requirements/lock.in

demo: $(STAMP)
	$(VENV)/bin/mskai demo --out demo-output

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest Testing -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) Testing/benchmarks/run_benchmarks.py

# Rewrites the README's browser screenshots (docs/images/web_*.png) from the web tests.
screenshots: $(STAMP)
	MSKAI_UPDATE_SCREENSHOTS=1 $(PY) -m pytest Testing/test_web_viewer.py -q

clean:
	rm -rf $(VENV) demo-output
