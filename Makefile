# The two set-up commands of the README. Each makes its own virtual environment
# (.venv, git-ignored) on first use and is safe to run again.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench docs clean

$(VENV)/.demo-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.demo-installed

## jopt's main job: train an MLP on scikit-learn's digits with SGD, RMSprop and Adam.
demo: $(VENV)/.demo-installed
	$(PY) -m jopt.demo

## The whole suite: ruff, mypy, then unit and parity tests, doctests, notebooks.
test: $(VENV)/.test-installed
	$(PY) -m ruff check jopt tests benchmarks docs
	$(PY) -m mypy jopt
	$(PY) -m pytest -n 2 --dist loadfile

## Step time, first step and memory: jopt (and its layouts) against optax, Keras 3 and
## torch's fused/foreach optimizers when torch is installed (see benchmarks/README.md).
bench: $(VENV)/.test-installed
	$(PY) benchmarks/step_time.py

## The documentation site into site/ (notebooks executed, so their plots show); the suite
## builds it strictly too (tests/test_docs.py), without executing the notebooks.
docs: $(VENV)/.test-installed
	PYTHONPATH=$(CURDIR) JOPT_DOCS_EXECUTE=true $(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) artifacts .pytest_cache site
