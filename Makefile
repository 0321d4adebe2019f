# CINR: `make demo` runs the product, `make test` runs the whole suite. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint bench-fit system-deps system-test-deps

venv: $(STAMP)

# The project itself is installed too (editable, offline: setuptools from the venv), so `import inr` and
# `import training` work from any directory, as the documented examples are written.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

# Debian packages the product needs: Fashion-MNIST's IDX files for the built-in fashion-mnist sources.
system-deps:
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || { echo "installing Debian's dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

# Debian packages the tests need: Chromium for the browser tests, PostgreSQL/Redis clients for .ci/run.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The fitting tests run twice: with the native sine kernel (the default where it builds) and with torch.sin.
test: venv system-deps system-test-deps lint
	CINR_NATIVE=0 $(BIN)/pytest -q -p no:cacheprovider tests/test_fit.py tests/test_inr_dataset.py tests/test_fields.py
	$(BIN)/pytest -q

bench-fit: venv
	$(BIN)/python -m bench.fit

# -- demo (web-backbone) ------------------------------------------------------------------------------------------
# `make demo`: Redis (Debian's redis-server, installed when missing and started on 6379 or a spare port when none
# runs; REDIS_URL set = use that one), migrations, an admin account (credentials printed), the digits and MNIST-5k
# datasets, then the ASGI server and Celery workers under honcho (Procfile). Ctrl-C stops all of it. SECRET_KEY: from
# the environment, or generated once into var/secret-key.txt (the settings refuse to start without one).
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo)

.PHONY: demo
demo: venv system-deps
	@set -e; procs="web worker cpuworker"; \
	if [ -z "$$REDIS_URL" ]; then \
	  if $(BIN)/python -c "import redis; redis.Redis(port=6379, socket_timeout=1).ping()" 2>/dev/null; then \
	    REDIS_URL=redis://127.0.0.1:6379/0; echo "using the Redis running on port 6379"; \
	  else \
	    command -v redis-server >/dev/null 2>&1 || { echo "installing Debian's redis-server"; \
	      $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }; \
	    CINR_DEMO_REDIS_PORT=$$($(BIN)/python -c "import socket; busy = socket.socket().connect_ex(('127.0.0.1', 6379)) == 0; \
	      spare = socket.socket(); spare.bind(('127.0.0.1', 0)); print(spare.getsockname()[1] if busy else 6379)"); \
	    export CINR_DEMO_REDIS_PORT; REDIS_URL=redis://127.0.0.1:$$CINR_DEMO_REDIS_PORT/0; procs="redis $$procs"; \
	    echo "starting redis-server on port $$CINR_DEMO_REDIS_PORT"; \
	  fi; \
	fi; \
	if [ -z "$$SECRET_KEY" ]; then \
	  keyfile="$${CINR_VAR_DIR:-var}/secret-key.txt"; mkdir -p "$$(dirname "$$keyfile")"; \
	  [ -s "$$keyfile" ] || (umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$$keyfile"); \
	  SECRET_KEY=$$(cat "$$keyfile"); \
	fi; \
	export SECRET_KEY REDIS_URL CINR_HOST=$(DEMO_HOST) CINR_PORT=$(DEMO_PORT); \
	$(BIN)/python manage.py migrate --noinput -v 0; \
	$(BIN)/python manage.py demo_setup --url http://$(DEMO_HOST):$(DEMO_PORT)/; \
	exec $(BIN)/honcho start $$procs
