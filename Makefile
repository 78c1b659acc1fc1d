# The two commands of README: `make run` (a demo on the embedded SQLite default) and
# `make test` (the whole suite). Both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint bench clean system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# A demo job pushed and handled on the embedded SQLite default: no server, no config.
run: venv
	CHAPPY_JOBS=chappyd.demo $(BIN)/chappyctl push chappyd.demo.Hello --data '{"name": "world"}'
	CHAPPY_JOBS=chappyd.demo $(BIN)/chappyctl push chappyd.demo.Hello --data '{"name": "chappyd"}'
	CHAPPY_JOBS=chappyd.demo $(BIN)/chappyd --workers=2 --stop-when-empty --log-format=console
	CHAPPY_JOBS=chappyd.demo $(BIN)/chappyctl status

# Installs the PostgreSQL and Redis server binaries the suite starts throwaway copies of.
system-deps:
	bash scripts/system-deps.sh

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
