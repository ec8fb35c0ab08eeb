# The two commands a fresh machine needs (README): `make up` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: up demo test test-tools screenshots lint format bench-ingest bench-export clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

up: $(STAMP)  ## the main job: embedded broker + worker + web (Ctrl-C stops it)
	$(BIN)/abacus up

demo: $(STAMP)  ## sample district, simulated school year, a YTD export
	$(BIN)/abacus demo

test: $(STAMP) test-tools  ## lint and layer contracts, then the whole suite against the real embedded stack
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n 3 --dist loadfile --durations=15

test-tools:  ## Debian's prometheus (promtool) and chromium, installed when missing
	.ci/install-test-tools

screenshots: $(STAMP) test-tools  ## refresh docs/screenshots/ from the browser tests
	ABACUS_TEST_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/integration -k browser

bench-ingest: $(STAMP)  ## events/s against the raw-loader baseline (batch and single records)
	$(BIN)/abacus bench ingest && $(BIN)/abacus bench ingest --no-batch

bench-export: $(STAMP)  ## 100k students x 180 days against ClickHouse's own CSV
	$(BIN)/abacus bench export

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
