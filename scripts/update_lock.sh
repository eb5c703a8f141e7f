#!/usr/bin/env bash
# Re-create requirements.lock: the versions installed in .venv (what `make test` ran with) of everything
# `.[dev,fleet]` needs, each with its files' sha256, so `make setup` installs exactly that set with
# `pip install --require-hashes`. torch is left out: `make setup` installs TORCH_SPEC first (a CPU build from
# local disk here, a CUDA build elsewhere; the two have different hashes).
#   usage: bash scripts/update_lock.sh        (after `make setup` and a green `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q pip-tools
.venv/bin/pip freeze --exclude-editable | grep -v -e "^torch==" -e "^-e " > "$tools/installed.txt"
"$tools/venv/bin/pip-compile" -q pyproject.toml --extra dev --extra fleet -c "$tools/installed.txt" --generate-hashes \
  --unsafe-package torch --strip-extras --no-emit-index-url --no-emit-find-links --no-header -o requirements.lock
# the constraints file was temporary: drop the lines that name it
sed -i -e "\|-c $tools/installed.txt|d" requirements.lock
sed -i '1i # .[dev,fleet] at the versions .venv was tested with, with hashes; torch is installed first (Makefile).\n# Re-create: bash scripts/update_lock.sh' requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages"
