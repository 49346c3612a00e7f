#!/usr/bin/env bash
# GPU check (docs/scale-out.md): on a machine with one CUDA GPU, within about 8 minutes,
#   1. the embedded model through --backend hf and --backend vllm on two benchmarks (16 items each),
#      and the greedy agreement between the two backends, as counts;
#   2. one short training run on the GPU (the ci budget on the embedded model), with tokens/s;
#   3. the generation benchmark's tokens/s on the GPU.
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (needs .venv from `make setup`; vllm for step 1's second half)
# Not run in CI, which has no GPU. Every figure it prints comes from this run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-check}
PY=${PYTHON:-.venv/bin/python}
export HARNESS_DATA_DIR=${HARNESS_DATA_DIR:-$(cd .. && pwd)/shared/data} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
rm -rf "$OUT"; mkdir -p "$OUT"
BENCH=math500,ifeval
time "$PY" -m harness_app eval --model smollm2-135m --backend hf --benchmarks $BENCH --limit 16 -o "$OUT/hf" --label hf
if "$PY" -c "import vllm" 2>/dev/null; then
  time "$PY" -m harness_app eval --model smollm2-135m --backend vllm --benchmarks $BENCH --limit 16 -o "$OUT/vllm" --label vllm
  "$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for task in ("math500", "ifeval"):
    rows = {}
    for label in ("hf", "vllm"):
        path = out / label / "eval" / label / f"samples_{task}.jsonl"
        rows[label] = {r["item_id"]: r.get("response") for r in map(json.loads, path.read_text().splitlines())}
    same = sum(rows["hf"][i] == rows["vllm"].get(i) for i in rows["hf"])
    print(f"greedy agreement hf vs vllm on {task}: {same}/{len(rows['hf'])} identical responses")
PY
else
  echo "vllm not installed: skipped the vllm backend (pip install vllm on this machine)"
fi
time "$PY" -m harness_app compare --profile ci --set model=smollm2-135m --set eval.benchmarks=math500 \
  -o "$OUT/train" --report-dir "$OUT/train-report"
"$PY" - "$OUT/train" <<'PY'
import json, sys
from pathlib import Path
for summary in sorted(Path(sys.argv[1]).glob("train/*/summary.json")):
    s = json.loads(summary.read_text())
    print(f"train {summary.parent.name}: {s['tokens_trained']} tokens in {s['wall_seconds']:.1f} s = "
          f"{s['tokens_trained'] / s['wall_seconds']:.0f} tok/s")
PY
"$PY" perf/generation.py --quick --engines project --device cuda
