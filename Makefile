# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   - creates .venv, installs, runs the demo on the offline replica
#   make test   - creates .venv, installs, runs the test suite; also creates
#                 .venv-notf (the package without TensorFlow), in which the
#                 suite runs tests/notf/ (tests/test_batches_notf.py)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTF := .venv-notf
NOTF_STAMP := $(NOTF)/.installed

.PHONY: demo test install install-notf clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python setup.cfg setup.py pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,tensorflow,dask]"
	touch $(STAMP)

# What `pip install 'sign-datasets[jax]'` gives, plus pytest and Grain: no TensorFlow.
$(NOTF_STAMP): Makefile setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(NOTF)
	$(NOTF)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(NOTF)/bin/python -m pip install --quiet -e ".[jax]" "pytest>=8,<10" "grain>=0.2.10,<0.3"
	touch $(NOTF_STAMP)

install: $(STAMP)

install-notf: $(NOTF_STAMP)

demo: $(STAMP)
	$(BIN)/sign-datasets demo

test: $(STAMP) $(NOTF_STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(NOTF) demo-output .pytest_cache
