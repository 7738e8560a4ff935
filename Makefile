# Two commands for a fresh machine with only Python 3.11+ and make:
#   make run    set everything up and serve the demo portal on http://127.0.0.1:$(PORT)
#   make test   set everything up and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# pytest-xdist workers for make test (0: one process, no workers).
TEST_WORKERS ?= 2
export FLASK_APP := portal

.PHONY: run test install translations lint bench clean lock

# Installed at the versions in constraints.txt (make lock renews them).
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

translations: install
	$(BIN)/pybabel compile --statistics -d portal/translations

# Links on certificates, QR codes and e-mails point where the demo is served (PORTAL_BASE_URL,
# when set, wins: e.g. behind a proxy). The demo's certificates are signed with it, so the demo
# data is loaded with it too.
run: export PORTAL_BASE_URL ?= http://127.0.0.1:$(PORT)
run: translations
	mkdir -p instance
	$(BIN)/flask db upgrade
	$(BIN)/flask demo load --if-empty
	$(BIN)/flask log backfill
	$(BIN)/flask log sign
	PORT=$(PORT) BIN=$(BIN) ./scripts/serve

test: translations
	./scripts/ensure-chromium
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: translations
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/python bench/verify_bench.py --scale 100
	$(BIN)/python bench/memory_bench.py

# Re-resolve pyproject.toml's ranges from scratch and write the versions chosen to constraints.txt.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
