"""torchvision from PyPI beside a CPU torch. PyPI's torchvision wheel links its C++ ops (nms, roi_align, ...)
against CUDA torch, so beside the CPU build (pytorch.org's CPU wheels out of reach) they cannot load, and
`import torchvision` fails at "operator torchvision::nms does not exist" while registering their fake kernels:
in scaleproof, and in transformers, which imports torchvision whenever it is installed. The models need none of
the ops. So before torchvision's first import, where its library does not load beside a CPU torch, declare the two
ops its import registers; it then imports, and its own check refuses nms or roi_align with a clear error when one
is called. Nothing changes where the ops load (a torchvision built for this torch) or where torch is a CUDA build
(a mismatch there is a real error, and zoo.torchvision_unusable says how to fix it).
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import importlib.util
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

# the ops torchvision/_meta_registrations.py registers fake kernels for at import, whether or not _C loaded
IMPORT_TIME_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                   "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
_declared = []  # the torch.library.Library, kept alive: collected, it would drop its definitions


def declare_ops_if_unloadable() -> bool:
    """Declare IMPORT_TIME_OPS where torchvision is installed, torch is a CPU build and torchvision's C++ library
    does not load; True if they were declared."""
    spec = importlib.util.find_spec("torchvision")  # finds, does not import
    if spec is None or not spec.submodule_search_locations or _declared:
        return False
    import torch

    if torch.version.cuda is not None:
        return False
    libraries = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    if not libraries:
        return False
    try:
        torch.ops.load_library(str(libraries[0]))  # what torchvision's import does; a second load is a no-op
        return False
    except OSError:
        pass
    library = torch.library.Library("torchvision", "DEF")
    for schema in IMPORT_TIME_OPS:
        library.define(schema)
    _declared.append(library)
    logger.info(f"torchvision {importlib.metadata.version('torchvision')}: its C++ ops do not load beside torch "
                f"{torch.__version__}; its models run, its detection ops (nms, roi_align) raise")
    return True


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs declare_ops_if_unloadable once, just before the first `import torchvision` (ours or a library's)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            try:
                declare_ops_if_unloadable()
            except Exception as e:  # noqa: BLE001 - never break an import; torchvision's own error then speaks
                logger.debug(f"torchvision ops not declared: {e}")
        return None  # the usual finders import it


def install() -> None:
    """Put the hook in place (cheap: imports nothing); a no-op once torchvision is imported or the hook is in."""
    if "torchvision" not in sys.modules and not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())
