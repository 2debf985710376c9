# make run   : set up, then label the sample data with the embedded default (conf=local)
# make test  : set up, then run the tests
# make setup : create or update .venv (does nothing when it is current)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-unit clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this machine's wheel cache, not the CUDA one from PyPI
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[cpu,test]'
	# PyPI's torchvision/torchaudio/torchcodec break transformers imports beside the CPU torch
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(STAMP)

run: setup
	$(PY) jobs/label.py conf=local

test: setup
	$(PY) -m pytest -q

test-unit: setup
	$(PY) -m pytest -q -m "not integration"

clean:
	rm -rf out .cache
