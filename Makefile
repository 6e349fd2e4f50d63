# The two commands a new user needs: `make run` and `make test`.
# pipenv is called as `python3 -m pipenv` so a fresh `pip install --user pipenv` works without a PATH change.

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_NOSPIN := 1
# The app reads .env itself, without overriding what is already set; pipenv's own reading of it would
# override, so an empty SIGN_IN_REQUIRED= in .env would undo make run's SIGN_IN_REQUIRED=0.
export PIPENV_DONT_LOAD_ENV := 1
export FLASK_APP := twitapp

PYTHON ?= python3
PIPENV := $(PYTHON) -m pipenv
HOST ?= 127.0.0.1
PORT ?= 5000
# Served on loopback only, nobody else can reach the app, so no sign-in is asked for; on any other
# address operators must sign in (SIGN_IN_REQUIRED, on by default).
SIGN_IN_REQUIRED ?= $(if $(filter 127.0.0.1 localhost ::1,$(HOST)),0,1)

.PHONY: run test check install lint format bench
.DEFAULT_GOAL := run

## run: install, migrate the database, load the demo accounts into an empty one, serve on http://127.0.0.1:5000
## (no sign-in there: only this machine can reach it)
run: install .env
	@echo "==> Bringing the database up to date (flask db upgrade)"
	@$(PIPENV) run flask db upgrade
	@echo "==> Loading the demo accounts into an empty database (flask seed-demo --if-empty)"
	@$(PIPENV) run flask seed-demo --if-empty
	@echo "==> Starting the server; Ctrl-C stops it"
	@$(PYTHON) -c "$$ANNOUNCE" $(HOST) $(PORT) &
	@SIGN_IN_REQUIRED=$(SIGN_IN_REQUIRED) $(PIPENV) run flask run --host $(HOST) --port $(PORT)

# Says where to open the app once its port answers (in the background while `flask run` starts).
define ANNOUNCE
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        time.sleep(0.2)
    else:
        print(f"\n==> HypoTweet is up: open http://{host}:{port} in a browser\n", flush=True)
        break
endef
export ANNOUNCE

## test: the whole suite (SQLite, PostgreSQL and browser tests; the latter skip when their server is missing)
test: install
	$(PIPENV) run pytest

## check: lint, then the tests that need no PostgreSQL server and no browser (before every commit)
check: lint
	$(PIPENV) run pytest -m "not postgres and not browser"

install: .venv/.synced

.venv/.synced: Pipfile.lock
	@$(PIPENV) --version >/dev/null 2>&1 || { echo "==> Installing pipenv"; \
	  $(PYTHON) -m pip install --quiet pipenv || $(PYTHON) -m pip install --quiet --user pipenv; }
	@echo "==> Installing the Python packages into .venv/ (pipenv sync; a few minutes the first time)"
	PIPENV_VERBOSITY=0 $(PIPENV) sync --all
	@touch $@

# A local .env with a fresh random SECRET_KEY, written once from the documented example.
.env:
	@key=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))'); \
	  sed "s/^SECRET_KEY=.*/SECRET_KEY=$$key/" .env.example > .env
	@echo "Wrote .env with a new SECRET_KEY (edit it to add an X API token)."

lint: install
	$(PIPENV) run ruff check .
	$(PIPENV) run ruff format --check .

format: install
	$(PIPENV) run ruff check --fix .
	$(PIPENV) run ruff format .

## bench: every benchmark: embedding, attribution, load and faults, sentiment, virality, style, import and
## export at scale (needs ../shared/data; some tens of minutes)
bench: install
	$(PIPENV) run python bench/ingest.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/authorship.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/windows.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/load.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/sentiment.py --data ../shared/data/sentiment-train
	$(PIPENV) run python bench/virality.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/style.py --data ../shared/data/authorship-dev
	$(PIPENV) run python bench/backup.py --data ../shared/data/authorship-dev
