# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup demo test lint bench clean

setup:
	scripts/setup.sh --all

demo: setup
	$(PY) scripts/demo.py

test: setup
	.venv/bin/ruff check src tests bench scripts entrypoint.py
	cd examples/greeter && go test ./...
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf perfgate-out .pytest_cache
