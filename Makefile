# The two commands a newcomer needs: `make run` and `make test`. Only python3 (with venv) is
# assumed; everything else is installed into .venv/ on first use.

PYTHON ?= python3
PORT ?= 8000
WEB_CONCURRENCY ?= 2
TEST_WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
# PostgreSQL for the second test run: TEST_DATABASE_URL, else DATABASE_URL, else the local server.
PG_TEST_URL := $(or $(TEST_DATABASE_URL),$(DATABASE_URL),postgres://postgres@127.0.0.1:5432/models_api)

.PHONY: run serve test test-sqlite test-postgres test-layouts bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]' -e './client[dataframes]'
	@touch $@ $(VENV)/.installed

## run: install, migrate and serve the API on http://127.0.0.1:$(PORT) (embedded default: SQLite + var/media)
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Get an API token: $(BIN)/python manage.py create_api_user <name>   (then: curl -H 'Authorization: Token <key>' ...)"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## serve: the production server (gunicorn, $(WEB_CONCURRENCY) workers) on 0.0.0.0:$(PORT)
serve: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn config.wsgi --config config/gunicorn.conf.py

## test: the whole suite on SQLite, then on PostgreSQL when one is configured or answers locally (and the record tests through PgBouncer and on partitions)
test: $(VENV)/.installed-dev
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$(TEST_DATABASE_URL)$(DATABASE_URL)" ] || $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2).close()" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres && $(MAKE) --no-print-directory test-layouts; \
	else \
		echo "No PostgreSQL configured or answering on 127.0.0.1:5432: ran the suite on SQLite only."; \
	fi

test-sqlite: $(VENV)/.installed-dev
	@echo "== Test suite on SQLite"
	env -u DATABASE_URL -u AWS_STORAGE_BUCKET_NAME $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-dev
	@echo "== Test suite on PostgreSQL"
	env -u AWS_STORAGE_BUCKET_NAME DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## test-layouts: the record test modules (but the slow large-data ones) on PostgreSQL through PgBouncer, then on 8 partitions
RECORD_TESTS ?= tests/test_record*.py tests/test_bulk*.py tests/test_import_export.py \
	tests/test_concurrency.py tests/test_partitioning.py tests/test_pooling.py -m 'not slow'
test-layouts: $(VENV)/.installed-dev
	@if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then \
		echo "== Record tests through PgBouncer (transaction pooling)"; \
		TEST_PGBOUNCER=1 $(MAKE) --no-print-directory test-postgres PYTEST_ARGS="$(RECORD_TESTS) $(PYTEST_ARGS)"; \
	else \
		echo "pgbouncer is not installed (Debian: apt-get install pgbouncer): skipped the record tests through PgBouncer."; \
	fi
	@echo "== Record tests on the record table in 8 hash partitions"
	TEST_RECORD_PARTITIONS=8 $(MAKE) --no-print-directory test-postgres PYTEST_ARGS="$(RECORD_TESTS) $(PYTEST_ARGS)"

## bench: the record-path benchmark on a PostgreSQL database of its own (N=1,000,000; BENCH_ARGS="--records 100000")
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/models_api_bench
bench: $(VENV)/.installed
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py create_database
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --noinput --verbosity 0
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py bench $(BENCH_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy --config-file client/pyproject.toml client/models_api_client

clean:
	rm -rf $(VENV) var .pytest_cache
