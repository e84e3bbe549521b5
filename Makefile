# make demo / make test set up everything they need first (scripts/setup.sh is idempotent).
# PROFILE=classic (default: .venv, constraints.txt) or PROFILE=current (.venv-current,
# constraints-current.txt); see README "Pinned versions". VENV overrides the folder.
PROFILE ?= classic
ifeq ($(PROFILE),current)
VENV ?= .venv-current
else
VENV ?= .venv
endif
export PROFILE VENV
PY := $(VENV)/bin/python
DEMO_OUT ?=
# make bench: every benchmark under bench/, one table (BENCH_ARGS=--full: the long settings)
BENCH_ARGS ?=

.PHONY: setup demo test test-slow bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh "$(DEMO_OUT)"

test: setup
	@$(PY) -m pytest -q

test-slow: setup
	@$(PY) -m pytest -q -m slow

bench: setup
	@$(PY) bench/table.py $(BENCH_ARGS)

clean:
	rm -rf out .pytest_cache spark-warehouse mlruns
