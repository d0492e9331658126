# Two commands matter: `make demo` (set up + run the bundled example end to end) and
# `make test` (set up + run the test suite). Both work on a fresh machine with only PyPI/Debian.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
IK := $(VENV)/bin/instructkit
DEMO_OUT ?= out/quickstart

.PHONY: setup test demo chromium bench clean

setup: $(VENV)/.installed

# torch is pinned to the CPU build first: a bare `torch` requirement could pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[train,ray,dev]'
	touch $@

# Headless Chromium renders the HTML report in tests (Debian package; needs root to install).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the report tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will be SKIPPED"; }

test: setup chromium
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -p no:cacheprovider tests

demo: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(IK) run pipelines/quickstart.yaml --out $(DEMO_OUT)

bench: setup
	$(PIP) install -q -e '.[bench]'
	@echo "see docs/benchmarks.md for the benchmark commands"

clean:
	rm -rf out .pytest_cache build *.egg-info
