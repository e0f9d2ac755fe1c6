# Two commands do everything on a fresh machine:
#   make run    install, migrate, and start the whole platform locally
#   make test   install, and run every test against the real PostgreSQL and RabbitMQ
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PACKAGES = -e libs/kit[testing] -e gateway -e services/issues -e services/meetings \
           -e services/activities -e services/notifications -e tools/demo -e web[testing]
STAMP   = $(VENV)/.installed

.PHONY: run test install lint bench clean browser screenshots

$(STAMP): constraints.txt libs/kit/pyproject.toml gateway/pyproject.toml services/*/pyproject.toml tools/demo/pyproject.toml web/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES) honcho ruff
	touch $(STAMP)

install: $(STAMP)

run: install
	./deploy/local/run.sh

# The web front's browser tests drive Debian's Chromium (never a browser download by Playwright).
browser:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

test: install browser
	$(BIN)/pytest -n 2 --dist loadfile

# Screenshots show Chinese: they need a CJK font (Debian's Noto CJK) where none is installed.
screenshots: install browser
	@fc-list :lang=zh 2>/dev/null | grep -q . || ! command -v apt-get >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-noto-cjk
	$(BIN)/linli-web screenshots

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/events_throughput.py

clean:
	rm -rf $(VENV) var .pytest_cache
