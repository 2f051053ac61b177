# The two entry points of README.rst: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: test unit lint demo clean faults

# Installs what the tests need (Debian packages, a virtualenv, the mini-cloud
# with its guests) and runs every test: unit, packaging, lint, integration.
test: $(VENV)/.installed
	tools/minicloud/minicloud up
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

$(VENV)/.installed: requirements.txt test-requirements.txt setup.cfg tools/install-test-env
	tools/install-test-env $(VENV) $(PYTHON)
	touch $@

demo:
	@tools/demo

# 50 randomized fault trials on the mini-cloud (tools/faults/trials.py):
# prints the table, exits 1 if a trial broke a promise. FAULTS_ARGS adds
# options, e.g. FAULTS_ARGS='--seed 7'.
faults: $(VENV)/.installed
	tools/minicloud/minicloud up
	$(PY) tools/faults/trials.py --trials 50 $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
