# CINR: `make demo` runs the product, `make test` runs the whole suite. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint bench-fit system-test-deps

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

# Debian packages the tests need: Chromium for the browser tests, PostgreSQL/Redis clients for .ci/run.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: venv system-test-deps lint
	$(BIN)/pytest -q

bench-fit: venv
	$(BIN)/python -m bench.fit
