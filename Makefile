# The README's two set-up commands. Both bootstrap .venv on a fresh machine
# that has only Python 3.11+ (uv and nox are installed into .venv by pip).
# The first python3.x >= 3.11 on PATH that runs (pyenv shims may exist but fail).
ifndef PYTHON
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
            $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
            && { command -v $$p; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
export UV_COMPILE_BYTECODE := 1

.PHONY: demo tour test lint clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "provgate needs Python >= 3.11 on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	@touch $@

# The reference pipeline (example_pipelines/) in Dagster on the embedded defaults
# (SQLite ledger, local store), with the adapter installed beside; prints the
# verified lineage of the model and of one answer.
demo: $(BIN)/.installed
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e . -e 'integrations/dagster[example]'
	PROVGATE_HOME=.provgate-demo $(BIN)/python example_pipelines/run_dagster.py

# The five-minute tour of the CLI on the bundled dataset (examples/cli_tour.sh).
tour: $(BIN)/.installed
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/cli_tour.sh

# Tools run as `python -m ...` so no script shebang decides which interpreter runs them.
test: $(BIN)/.installed
	$(BIN)/python -m nox

lint: $(BIN)/.installed
	$(BIN)/python -m ruff check . && $(BIN)/python -m ruff format --check . && $(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .nox .provgate-demo .provgate-example
