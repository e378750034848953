# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := $(PY) -m pytest -q -p no:cacheprovider
RUFF := .venv/bin/ruff check src tests bench scripts entrypoint.py
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup setup-demo demo test test-fast fuzz lint generate bench clean

setup:
	scripts/setup.sh --all

# The demo needs the runtime only: perfgate and its dependencies, ghz, the example service, bpftrace.
setup-demo:
	PERFGATE_SYSTEM_PACKAGES=bpftrace PERFGATE_PYTHON_INSTALL=run scripts/setup.sh --system --python --ghz --examples

demo: setup-demo
	$(PY) scripts/demo.py

# The end-to-end tests (real load runs, containers, act) one at a time: they measure, and two at once would
# starve each other; then the unit tests over both cores. The slowest are listed, to keep CI's time in view.
test: setup
	$(RUFF)
	cd examples/greeter && go test ./...
	$(PYTEST) --durations=15 tests/e2e
	$(PYTEST) -n 2 tests/unit

# The unit tests (tests/unit/): no load runs, no containers; under a minute on 2 cores, spread over both
# (pytest-xdist). The fuzz properties run 10 examples each here, 40 in `make test` (tests/support/fuzz.py).
test-fast: setup
	PERFGATE_FUZZ=fast $(PYTEST) -n 2 tests/unit

# The exit-code contract under fuzzing (tests/unit/**/test_*_fuzz.py), at length: thousands of random examples
# per property (`make test` runs the same properties with a small fixed budget; tests/support/fuzz.py).
fuzz: setup
	PERFGATE_FUZZ=long $(PYTEST) -k fuzz tests/unit

# ruff, then the Action's linters (actionlint, check-jsonschema, zizmor, hadolint) with the settings
# tests/unit/test_action_files.py keeps.
lint: setup
	$(RUFF)
	$(PYTEST) tests/unit/test_action_files.py

# Files derived from others (schema/perfgate.schema.json from the config model, README's Action
# tables from action.yml): run after adding a config key or an action.yml input/output; tests check them.
generate:
	$(PY) scripts/generate.py

# Benchmarks are not tests: each prints its figures; those marked --write also update docs/benchmarks.md.
bench: setup
	$(PY) bench/bench_stats_synthetic.py --write
	$(PY) bench/bench_pprof.py
	$(PY) bench/bench_runq_overhead.py --write
	$(PY) bench/bench_gate_quality.py --write

clean:
	rm -rf perfgate-out .pytest_cache
