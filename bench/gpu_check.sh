#!/usr/bin/env bash
# The GPU check: install vft's training and inference stack, run the GPU tests
# (tests/gpu, `pytest -m gpu`), print the figures. Meant to finish within 8 minutes.
#
#     bash bench/gpu_check.sh          # from anywhere, on a machine with an NVIDIA GPU
#
# One GPU runs the colocated test (vLLM inside the trainer, through `vft run`); two or
# more GPUs also run the vLLM-server tests. The install needs PyPI, or a wheelhouse in
# .whl/ (used with --no-index when present). Exit codes: pytest's, or 2 (no GPU) or
# 3 (the install failed: nothing was verified).
#
# Environment: PYTHON (default python3), VFT_INSTALL_TIMEOUT_S (300), VFT_TEST_TIMEOUT_S
# (420), OUT (a folder for the log and the figures; default a temporary one).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT_DIR=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
LOG="$OUT_DIR/gpu_check.log"
# One torch for CPU and GPU machines: .ci/run pins torch==2.13.0, and vLLM 0.31 (the
# newest the `inference` extra and TRL 1.16 allow) pins the same version.
TORCH_PIN="torch==2.13.0"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off DS_BUILD_OPS=0 PYTHONUNBUFFERED=1

exec > >(tee "$LOG") 2>&1

echo "== GPU"
if ! nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version \
    --format=csv,noheader; then
    echo "gpu_check: nvidia-smi found no GPU; nothing to check here"
    exit 2
fi

echo "== install ($TORCH_PIN, .[train,inference,dev])"
started=$(date +%s)
# A CPU build of the pinned version (2.13.0+cpu) satisfies ==2.13.0, so pip would keep
# it and vLLM would meet a torch without CUDA: remove such a build first.
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda is None else 1)' 2>/dev/null; then
    echo "removing the CPU-only torch $("$PY" -c 'import torch; print(torch.__version__)')"
    "$PY" -m pip uninstall -y -q torch
fi
source_args=()
if [ -d .whl ]; then
    source_args=(--no-index --find-links .whl)
fi
if ! timeout "${VFT_INSTALL_TIMEOUT_S:-300}" "$PY" -m pip install -q "${source_args[@]}" \
    "$TORCH_PIN" -e ".[train,inference,dev]"; then
    echo "gpu_check: the install failed or timed out (no PyPI and no .whl/ wheelhouse?);"
    echo "gpu_check: NOT VERIFIED: the GPU tests need vLLM, TRL and DeepSpeed"
    exit 3
fi
echo "installed in $(($(date +%s) - started)) s:"
"$PY" - <<'EOF'
from importlib.metadata import version

import torch

names = ("torch", "vllm", "trl", "transformers", "accelerate", "deepspeed")
print("  " + ", ".join(f"{n} {version(n)}" for n in names))
print(f"  CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s) visible to torch")
EOF

echo "== pytest -m gpu"
started=$(date +%s)
timeout "${VFT_TEST_TIMEOUT_S:-420}" "$PY" -m pytest -m gpu -x -q -rs -s \
    --basetemp "$WORK/pytest" -p no:cacheprovider tests/gpu
rc=$?
echo "pytest exit code $rc after $(($(date +%s) - started)) s"

echo "== figures"
"$PY" - "$WORK/pytest" <<'EOF' | tee "$OUT_DIR/gpu_figures.txt"
import json
import statistics
import sys
from pathlib import Path

found = False
for path in sorted(Path(sys.argv[1]).rglob("metrics.jsonl")):
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        continue
    found = True
    run = path.parent.parent.name
    plan = json.loads((path.parent / "plan.json").read_text())
    mode = plan["inference"].get("mode") or "cpu"
    where = f"{plan['gpu_type']}:{plan['gpus_per_node']}, generation: {mode}"
    # the first step includes vLLM's start and warm-up: rates are over the steps after it
    later = rows[1:]
    span = rows[-1]["time"] - rows[0]["time"] if later else 0.0
    rate = f"{len(later) / span:.2f} steps/s" if span > 0 else "n/a (one step)"
    step_time = [r["step_time"] for r in later if r.get("step_time")]
    tokens = [r["tokens_per_s"] for r in later if r.get("tokens_per_s")]
    print(
        f"{run} ({where}): {len(rows)} steps, {rate} after step 1"
        + (f", step_time median {statistics.median(step_time):.2f} s" if step_time else "")
        + (f", {statistics.median(tokens):.0f} tokens/s" if tokens else "")
    )
if not found:
    print("no metrics: no GPU test trained (see the skips above)")
EOF
echo "log: $LOG"
exit "$rc"
