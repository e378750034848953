# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup demo test lint bench clean generate

setup:
	scripts/setup.sh --all

demo: setup
	$(PY) scripts/demo.py

test: setup
	.venv/bin/ruff check src tests bench scripts entrypoint.py
	cd examples/greeter && go test ./...
	$(PY) -m pytest -q -p no:cacheprovider

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
