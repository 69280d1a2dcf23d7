# Every target bootstraps what it needs on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS ?=

.PHONY: demo test bench lint venv standins clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@scripts/bootstrap-venv $(VENV)
	@touch $@

# The demo needs no apt package: without pcscd the virtual phone talks to the lane in-process.
demo: $(STAMP)
	$(PY) -m gate.cli demo $(ARGS)

standins:
	@scripts/install-standins

test: standins $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: standins $(STAMP)
	@$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
