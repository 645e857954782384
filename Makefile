# The whole set-up is two commands: `make run` and `make test`. Each creates .venv and installs what it needs.
# The fastest CPython 3.11 here that can make a venv (a PGO/LTO build if there is one; see the script)
PYTHON ?= $(shell bash scripts/pick-python.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.copbot-installed

.PHONY: run test bench lint format check-config docker clean constraints

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { echo "make: creating $(VENV) with $(PYTHON)" >&2 && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# the packages' bytecode without column ranges, as the image compiles it (Dockerfile: PYTHONNODEBUGRANGES);
	@# at the versions in constraints.txt, those `make test` passed with
	@PYTHONNODEBUGRANGES=1 $(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt -e '.[test]'
	@touch $(STAMP)
	@echo "make: copbot installed in $(VENV)" >&2

## run: the bot; with no config.toml, the console platform with SQLite and the web on 127.0.0.1:8080
run: $(STAMP)
	@$(BIN)/python -X no_debug_ranges -m compileall -q bot plugins migrations >/dev/null  # as the image does
	@$(BIN)/copbot run

## test: everything the tests need (Synapse in .venv-synapse), then lint, type checks (mypy) and the whole suite
test: $(STAMP)
	@bash scripts/install-synapse.sh
	@$(BIN)/ruff check .
	@$(BIN)/mypy
	@# two workers, each with its own Synapse and PostgreSQL, a test file each at a time: half the time on 2 cores
	@$(BIN)/python -m pytest --numprocesses 2 --dist loadfile

## bench: every bench under bench/, then one table of figures, targets, ratios and PASS/FAIL
bench: $(STAMP)
	@bash scripts/install-synapse.sh
	@$(BIN)/python bench/all.py

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/mypy

format: $(STAMP)
	@$(BIN)/ruff format bot plugins tests bench migrations

check-config: $(STAMP)
	@$(BIN)/copbot check-config

docker:
	docker build -t copbot .

## constraints: resolve copbot's dependencies afresh and pin them in constraints.txt (then run `make test`)
constraints:
	@bash scripts/update-constraints.sh

clean:
	rm -rf $(VENV) .venv-synapse .pytest_cache .ruff_cache .mypy_cache copbot.egg-info
