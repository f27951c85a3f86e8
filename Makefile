# closeloop: every target sets itself up; only Python 3.11+ is needed on the machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench soak clean

$(VENV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/closeloop demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src connectors tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests/reliability tests/e2e/test_wheel_install.py tests/integration/replicas

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
