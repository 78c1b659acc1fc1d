# The two commands of README: `make run` (a demo on the embedded SQLite default) and
# `make test` (the whole suite). Both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv bytecode run test lint bench clean system-deps deb test-deb

venv: $(STAMP) bytecode

# The editable install leaves bytecode to the first import, and with
# PYTHONDONTWRITEBYTECODE set (as on the build machines) every daemon the suite starts
# compiled the whole package again: ~50 ms of each start. An installed package (the
# .deb, a wheel) ships its bytecode; this does the same here, for the jobs of the tests
# and benchmarks too. When up to date it only compares timestamps.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q chappyd bench tests

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,speedups]'
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

# The .deb (dist/) from a git archive of HEAD, lintian-clean; then installed and driven
# through systemd in a booted Debian bookworm (root; tests/packaging runs it in `test`).
deb:
	bash packaging/build-deb.sh

test-deb:
	bash packaging/test-deb.sh

lint: venv
	$(BIN)/ruff check .

# The benchmark harness on one backend: `make bench BACKEND=postgres SUITE=pool`.
BACKEND ?= sqlite
SUITE ?= all
bench: venv
	$(BIN)/python -m bench.harness --backend $(BACKEND) --suite $(SUITE)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
