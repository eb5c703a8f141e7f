"""scaleproof: prove what an inference stack delivers.

Heavy and optional dependencies (torch, onnxruntime, tensorrt, papermill) are imported lazily by the
modules that need them, so `import scaleproof` works anywhere.
"""

import faulthandler
import os

__version__ = "0.1.0"


def _enable_fault_log():
    """A stage kernel that dies in native code leaves only "Kernel died" to papermill: the runner names a
    file in SCALEPROOF_FAULT_LOG for each stage's kernel (every notebook imports scaleproof first) and
    faulthandler writes the fatal signal and Python traceback there. Never fails the import."""
    path = os.environ.get("SCALEPROOF_FAULT_LOG")
    if not path:
        return None
    try:
        f = open(path, "a")  # noqa: SIM115 -- faulthandler needs it open for the life of the process
        faulthandler.enable(file=f, all_threads=True)
        return f
    except (OSError, ValueError, RuntimeError):
        return None


_fault_log = _enable_fault_log()  # kept referenced: a closed file would silence faulthandler

from . import log as _log  # noqa: E402,F401 - the package logger's console handler, in every process (kernels too)
from . import torchvision_compat as _torchvision_compat  # noqa: E402

_torchvision_compat.install()  # PyPI's torchvision beside a CPU torch: see the module
