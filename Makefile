# Two commands matter: `make demo` (set up + run the bundled example end to end) and
# `make test` (set up + run the test suite). Both work on a fresh machine with only PyPI/Debian.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
IK := $(VENV)/bin/instructkit
# pipelines/train_quickstart.yaml reads the pipeline output from this path
DEMO_OUT := out/quickstart

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

# The four steps on the bundled example: collect + preprocess (pipeline), train, evaluate.
demo: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(IK) run pipelines/quickstart.yaml --out $(DEMO_OUT)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(IK) train pipelines/train_quickstart.yaml --no-resume
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(IK) eval --model examples/models/stories260K --base \
	  --adapter runs/quickstart/adapter --template chatml --tasks openbook_qa,winogrande,heldout \
	  --heldout $(DEMO_OUT) --data-dir tests/fixtures/eval --limit 24 \
	  --out out/eval --markdown out/eval/comparison.md
	@echo "report: $(DEMO_OUT)/report.html   card: $(DEMO_OUT)/README.md   adapter: runs/quickstart/adapter   eval: out/eval/comparison.md"

bench: setup
	$(PIP) install -q -e '.[bench]'
	@echo "see docs/benchmarks.md for the benchmark commands"

clean:
	rm -rf out runs .pytest_cache build *.egg-info
