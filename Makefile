# One-command entry points. Each target installs what it needs (virtualenv, packages, Kafka jars).
#   make demo   -- the whole pipeline on the embedded defaults
#   make test   -- the test suite (starts its own Kafka broker in KRaft mode on 127.0.0.1)
#   make bench  -- benchmarks, written to BENCH.md

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup prereqs kafka-jars lint test demo bench clean

NATIVE_SRC := native/Cargo.toml native/build.rs native/hatch_build.py $(wildcard native/src/*.rs native/src/*/*.rs)

# The install builds the native core (native/, release mode) when cargo is on PATH, else stays pure
# Python; the last line printed says which (DECISIONS #56).
$(STAMP): pyproject.toml $(NATIVE_SRC)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)
	@$(VENV)/bin/hftstream --version

# Java and Maven run the local Kafka broker; Chromium renders the tape report in its test (headless);
# Prometheus and promtool run in the metrics tests. Install them from Debian's packages when missing
# (the prometheus service itself is never started).
prereqs:
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null || ! command -v chromium >/dev/null; then \
	  echo "installing java, maven and chromium (Debian packages default-jre-headless maven chromium)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless maven chromium >/dev/null; \
	fi
	@sh infra/prometheus/install.sh

setup: $(STAMP)

kafka-jars: prereqs setup
	$(PY) infra/kafka/launcher.py fetch

lint: setup
	$(VENV)/bin/ruff check streams connectors tests infra

test: setup kafka-jars lint
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/hftstream demo

bench: setup kafka-jars
	$(PY) tests/benchmarks/run.py --out BENCH.md

clean:
	rm -rf $(VENV) .hftstream hftstream-data .pytest_cache
