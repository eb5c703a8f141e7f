#!/usr/bin/env bash
# Re-create requirements.lock: the versions installed in .venv (what `make test` ran with) of everything
# `.[dev,fleet,vision]` needs, each with its files' sha256, so `make setup` installs exactly that set with
# `pip install --require-hashes`. torch is left out: `make setup` installs TORCH_SPEC first (a CPU build from
# local disk here, a CUDA build elsewhere; the two have different hashes).
#   usage: bash scripts/update_lock.sh        (after `make setup` and a green `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q pip-tools
# torch stays in the constraints (the build installed here, e.g. 2.13.0+cpu), so its dependencies resolve as that
# build's and not as PyPI's CUDA build's (nvidia-*, triton); only torch itself is left out of the lock
.venv/bin/pip freeze --all --exclude-editable | grep -v -e "^-e " -e "^pip==" > "$tools/installed.txt"
"$tools/venv/bin/pip-compile" -q pyproject.toml --extra dev --extra fleet --extra vision -c "$tools/installed.txt" --generate-hashes \
  --unsafe-package torch --strip-extras --no-emit-index-url --no-emit-find-links --no-header -o requirements.lock
# the constraints file was temporary: drop the lines that name it
sed -i -e "\|-c $tools/installed.txt|d" requirements.lock
sed -i '1i # .[dev,fleet,vision] at the versions .venv was tested with, with hashes; torch is installed first (Makefile).\n# Re-create: bash scripts/update_lock.sh' requirements.lock
# the lock holds only what .venv has: anything else was never tested
python3 - "$tools/installed.txt" <<'PY'
import re, sys
norm = lambda line: re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() + "==" + line.split("==")[1].split()[0]
installed = {norm(l) for l in open(sys.argv[1]) if "==" in l}
locked = {norm(l) for l in open("requirements.lock") if re.match(r"^[A-Za-z0-9_.-]+==", l)}
if locked - installed:
    sys.exit(f"requirements.lock has packages .venv does not: {sorted(locked - installed)}")
PY
echo "requirements.lock: $(grep -cE '^[A-Za-z0-9_.-]+==' requirements.lock) packages"
