# Every target bootstraps what it needs on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml scripts/bootstrap-venv | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(HASH)
STAMP_NFC := $(VENV)/.installed-nfc-$(HASH)
ARGS ?=

.PHONY: demo test bench lint venv standins clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap-venv
	@scripts/bootstrap-venv $(VENV)
	@touch $@

# The tests and benchmarks drive a real PC/SC stack: pyscard, built against the stand-ins' libpcsclite.
$(STAMP_NFC): pyproject.toml scripts/bootstrap-venv | standins
	@scripts/bootstrap-venv $(VENV) nfc
	@touch $@ $(STAMP)

# The demo needs no apt package: without pcscd the virtual phone talks to the lane in-process.
demo: $(STAMP)
	$(PY) -m selfcheckout demo $(ARGS)

standins:
	@scripts/install-standins

test: standins $(STAMP_NFC)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: standins $(STAMP_NFC)
	@$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
