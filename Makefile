# labelqa entry points. Run `make install` once, then `make demo`, `make test` or `make bench`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Tests talk to real services; these defaults are the local PostgreSQL and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/labelqa
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
PORT ?= 8000

.PHONY: install system-deps demo test bench lint

install: system-deps $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

# Debian's Chromium drives the browser tests (Playwright's own browser download cannot run here).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests"; fi; \
	fi

# Not `install`: serving the demo needs no browser, so no apt-get.
demo: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@# In-process, so the demo needs no worker even where CELERY_BROKER_URL is set (it would wait for one).
	CELERY_BROKER_URL= $(PY) manage.py load_demo
	@echo "Serving on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	$(VENV)/bin/gunicorn labelqa.wsgi -b 127.0.0.1:$(PORT) --workers 2 --access-logfile -

test: install
	$(PY) manage.py collectstatic --noinput -v0
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	  $(PY) -m pytest

# The README's figures, one script after another (about half an hour on 2 cores; no test runs meanwhile, as they
# would share the cores). One of them: make bench BENCHES=import_1m. Each prints what it measured; none asserts.
BENCHES ?= import_1m report_1m corrections_1m review_load soak crowd classify zoom_tiff delete_dataset
bench: $(VENV)/.installed
	@for name in $(BENCHES); do echo "== bench/$$name.py"; $(PY) bench/$$name.py || exit 1; done

lint:
	$(VENV)/bin/ruff check .
