# shopgate: one Makefile for setup, demo, tests and benchmarks.
# `make demo` and `make test` do all setup on a fresh Debian / Raspberry Pi OS machine:
# Debian packages (when missing), a virtual environment, the project and its test tools.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# chromium: the browser tests (Debian's build; no browser download); fonts-wqy-microhei:
# Chinese captions on door posters (shopgate-agent door-qr)
APT_PACKAGES := mosquitto mosquitto-clients chromium fonts-wqy-microhei
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup system-deps venv demo test test-all lint format bench docs clean

help:
	@echo "make demo    run the simulated store, the agent and a scripted story"
	@echo "make test    lint and run the test suite (< 10 minutes)"
	@echo "make bench   run the benchmarks (JSON on stdout)"
	@echo "make docs    regenerate docs/config.md from the config schema"

setup: system-deps venv

# Install only what is missing, so a second run is quick and needs no network.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/python -m demo

# Three workers, each taking whole files (module fixtures stay shared): the suite spends
# most of its time waiting on the processes it starts, so it runs in ~6 instead of ~14
# minutes on a 2-core machine. One test alone: .venv/bin/pytest tests/path::name
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 3 --dist loadfile

# Everything, including the slow soak/load suite.
test-all: setup
	$(BIN)/pytest -q -n 3 --dist loadfile -m ''

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Each bench prints its figures beside floors measured in the same run (bench/README.md).
# A bench that misses its target exits non-zero; the others still run, then make fails.
bench: setup
	@failed=""; for b in bench/[a-z]*.py; do echo "== $$b" >&2; \
	  $(BIN)/python $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "missed a target or failed:$$failed" >&2; exit 1; fi

docs: venv
	$(BIN)/python -m agent.config.docs > docs/config.md

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .hypothesis
