"""Rewrite each stage notebook's parameters cell from `Params`: the names it declares, annotated with their type,
their default and the field's help as the comment (what `papermill --help-notebook` shows). The paired .ipynb is
updated by jupytext. tests/unit/test_notebooks_params.py fails when a cell and `Params` drift apart.

    python scripts/sync_notebook_params.py
"""

import re
import subprocess
import sys

import papermill

from scaleproof.config import parameters_cell
from scaleproof.paths import STAGES, notebooks_dir

CELL = re.compile(r'(# %% tags=\["parameters"\]\n)(.*?)(\n\n# %%)', re.S)


def main() -> int:
    changed = []
    for stage in STAGES:
        py, nb = notebooks_dir() / f"{stage}.py", notebooks_dir() / f"{stage}.ipynb"
        names = list(papermill.inspect_notebook(str(nb)))
        text = py.read_text()
        cell = parameters_cell(names)
        new = CELL.sub(lambda m, cell=cell: m.group(1) + cell + m.group(3), text, count=1)
        if new != text:
            py.write_text(new)
            subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--to", "ipynb", "--update", str(py),
                            "-o", str(nb)], check=True)
            changed.append(stage)
    print(f"parameters cells rewritten: {', '.join(changed) or 'none (all in step)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
