# Two commands do everything on a fresh machine:
#   make run    install, migrate, and start the whole platform locally
#   make test   install, and run every test against the real PostgreSQL and RabbitMQ
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PACKAGES = -e libs/kit[testing] -e gateway -e services/issues -e services/meetings \
           -e services/activities -e services/notifications -e tools/demo
STAMP   = $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): constraints.txt libs/kit/pyproject.toml gateway/pyproject.toml services/*/pyproject.toml tools/demo/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES) honcho ruff
	touch $(STAMP)

install: $(STAMP)

run: install
	./deploy/local/run.sh

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/events_throughput.py

clean:
	rm -rf $(VENV) var .pytest_cache
