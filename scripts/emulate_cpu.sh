#!/usr/bin/env bash
# Run a command as if on another x86-64 CPU model, to check what depends on the instruction set (INT8 kernels)
# without that machine. QEMU's user-mode emulator presents the model's CPUID, so ONNX Runtime's MLAS, numpy and
# torch choose the kernels they choose there: numerics are that machine's, timings are not (emulated code is
# many times slower). Python children started with multiprocessing's spawn run under the emulator too.
#   usage: scripts/emulate_cpu.sh [--cpu MODEL] COMMAND [ARG...]   (COMMAND a python executable, first)
#   e.g.   scripts/emulate_cpu.sh .venv/bin/python -m pytest tests/integration/test_calibrate.py
# MODEL defaults to EPYC-Milan (AMD Zen 3: AVX2, no AVX-512, no VNNI); `qemu-x86_64 -cpu help` lists others.
# Needs Debian's qemu-user. A model whose AVX-512, VNNI or AMX the emulator cannot provide is refused.
set -euo pipefail
model=EPYC-Milan
if [ "${1:-}" = "--cpu" ]; then model=$2; shift 2; fi
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
command -v qemu-x86_64 >/dev/null || { echo "needs QEMU's user-mode emulator: apt-get install qemu-user" >&2; exit 2; }
python=$(cd "$(dirname "$(command -v "$1")")" && pwd)/$(basename "$1"); shift  # the venv path, not its target
# the emulator cannot provide some of the model's features: leave them out, and refuse a model whose INT8
# instructions (AVX-512, VNNI, AMX) would be among them, since the run would then not be that CPU's
missing=$(qemu-x86_64 -cpu "$model" /bin/true 2>&1 | sed -n 's/.*CPUID[^.]*\.[^.]*\.\([a-z0-9_-]*\).*/-\1/p' | paste -sd, -)
named=${missing//,-/, }; named=${named#-}
if grep -q -E "avx512|vnni|amx" <<<"$missing"; then
  echo "QEMU cannot emulate $model's INT8 instructions (it lacks $named): choose a model without them" >&2; exit 2
fi
[ -z "$missing" ] || echo "emulating $model without $named (the emulator lacks them)" >&2
cpu=$model${missing:+,$missing}
wrap=$(mktemp -d /tmp/emulated-cpu.XXXXXX)
trap 'rm -rf "$wrap"' EXIT
# the interpreter under the emulator, and spawn's children through the same wrapper (sitecustomize runs at start-up)
cat > "$wrap/python" <<WRAP
#!/bin/sh
exec qemu-x86_64 -cpu $cpu "$python" "\$@"
WRAP
chmod +x "$wrap/python"
cat > "$wrap/sitecustomize.py" <<PY
import multiprocessing
multiprocessing.set_executable("$wrap/python")
PY
# papermill's kernels too: a python3 kernel spec found first on JUPYTER_PATH starts them through the wrapper
mkdir -p "$wrap/share/jupyter/kernels/python3"
cat > "$wrap/share/jupyter/kernels/python3/kernel.json" <<JSON
{"argv": ["$wrap/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 ($model)", "language": "python"}
JSON
export PYTHONPATH=$wrap${PYTHONPATH:+:$PYTHONPATH} JUPYTER_PATH=$wrap/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}
"$wrap/python" "$@"
