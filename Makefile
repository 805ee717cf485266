# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test venv check clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

## Start the service on SQLite: web server + Django-Q cluster, Ctrl-C stops both.
run: venv
	$(BIN)/python scripts/dev.py

## Run the whole test suite (SQLite and the ORM broker unless DATABASE_URL / REDIS_URL are set),
## after the layers contract (.importlinter: cron -> jobs -> webhooks -> ledger).
test: venv
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: venv
	DJANGO_DEBUG=true CRON_SECRET=check $(BIN)/python manage.py check

clean:
	rm -rf $(VENV) var
