#!/usr/bin/env bash
# Run on a CUDA machine that has torch but no papermill/LoadGen and no network: install the wheels in .whl/, run
# the GPU tests and one chain per profile, and pack each run's small files into $RESULTS_DIR (default /tmp/out).
#   usage: benchmarks/device/gpu_run.sh PROFILE[:RUN_ID] ...   (e.g. params/h100.yaml:h100-resnet50)
# Fill .whl/ beforehand on a machine with network access (`pip download --no-deps -d .whl NAME==VERSION ...` for the
# packages of requirements.lock the CUDA machine lacks); set SKIP_TESTS=1 to skip pytest (GPU_TESTS=files to pick), and
# RUN_ARGS="--set name=value ..." to pass overrides to every run.
set -uo pipefail
RESULTS_DIR=${RESULTS_DIR:-/tmp/out}
mkdir -p "$RESULTS_DIR"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH JUPYTER_PATH=/tmp/site/share/jupyter
fi
export PYTHONPATH=$PWD/lib:$PWD:${PYTHONPATH:-}
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; python3 -c \
  "import torch, onnxruntime, papermill, mlperf_loadgen; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ort', onnxruntime.__version__)"; } 2>&1 | tee "$RESULTS_DIR/env.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
  python3 -m pytest -q -p no:cacheprovider -rs -m "gpu or tensorrt" ${GPU_TESTS:-tests/integration/test_gpu.py tests/integration/test_gpu_low_precision.py tests/integration/test_tensorrt_gpu.py} 2>&1 | tail -30 | tee "$RESULTS_DIR/gpu_tests.txt"
fi
# H100 and H200 runs are priced with one pair of rows read from one page on one date (AWS Capacity Blocks,
# data/price_sources.md#capacity-blocks), so their cost per 1M compares the cards and not two price sources;
# PRICE_ARGS="" keeps the profile's own instance, and an instance in RUN_ARGS wins (the last --set of a name does)
if [ -z "${PRICE_ARGS+x}" ]; then
  PRICE_ARGS=""
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  case "$gpu" in
    "NVIDIA H200"*) PRICE_ARGS="--set instance=aws-cb-p5e-h200" ;;      # the SXM H200 of a p5e (not a GH200)
    "NVIDIA H100 80GB HBM3"*) PRICE_ARGS="--set instance=aws-cb-p5-h100" ;;  # the SXM H100 of a p5 (not PCIe/NVL)
  esac
fi
for spec in "$@"; do
  profile=${spec%%:*}; run_id=${spec#*:}; [ "$run_id" = "$spec" ] && run_id=$(basename "$profile" .yaml)
  # a machine used before keeps /tmp/runs: clear this id so what is packed below is this run, not an earlier one
  rm -rf "/tmp/runs/$run_id" "/tmp/runs/failed/$run_id" "/tmp/runs/.staging/$run_id"
  # RUN_TIMEOUT (seconds) stops a slow run in time for what it made to be packed below
  timeout "${RUN_TIMEOUT:-0}" python3 -m scaleproof.cli run --params "$profile" --run-id "$run_id" \
    --outputs /tmp/runs --quiet $PRICE_ARGS ${RUN_ARGS:-} 2>&1 | grep -v -i "warn" | tee "$RESULTS_DIR/$run_id.log"
  for dir in /tmp/runs/$run_id /tmp/runs/failed/$run_id /tmp/runs/.staging/$run_id; do [ -d "$dir" ] && break; done
  # engines and ONNX models stay behind (large); everything else comes back, manifest included
  tar -czf "$RESULTS_DIR/$run_id.tar.gz" -C "$(dirname "$dir")" --exclude='*.onnx' --exclude='*.safetensors' \
      --exclude='*.onnx.data' "$(basename "$dir")"
done
ls -la "$RESULTS_DIR"
