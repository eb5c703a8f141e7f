"""torchvision from PyPI beside a CPU torch. PyPI's torchvision wheel links its C++ ops (nms, roi_align, ...)
against CUDA torch, so beside the CPU build (pytorch.org's CPU wheels out of reach) they cannot load, and
`import torchvision` fails at "operator torchvision::nms does not exist" while registering their fake kernels:
in scaleproof, and in transformers, which imports torchvision whenever it is installed. The models need none of
the ops. So before torchvision's first import, where its library does not load beside a CPU torch, declare the two
ops its import registers; it then imports, and an op that needs the C++ library (nms, roi_pool, deform_conv2d, ...)
raises torchvision's own "Couldn't load custom C++ ops" when called (roi_align falls back to Python on the CPU).
Nothing changes where the ops load (a torchvision built for this torch) or where torch is a CUDA build (a mismatch
there is a real error, and zoo.torchvision_unusable says how to fix it).
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
    logger.debug(f"torchvision {importlib.metadata.version('torchvision')}: its C++ ops do not load beside torch "
                 f"{torch.__version__}; declared the two its import registers")
    return True


class _DeclaringLoader(importlib.abc.Loader):
    """torchvision's own loader, with declare_ops_if_unloadable run first: when torchvision is executed, under its
    own module lock (not while finders are asked, which a mere lookup does too)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            declare_ops_if_unloadable()
        except Exception as e:  # noqa: BLE001 - never break an import; torchvision's own error then speaks
            logger.debug(f"torchvision ops not declared: {e}")
        self.loader.exec_module(module)

    def __getattr__(self, name):  # get_data, get_resource_reader, is_package, ...: the real loader's
        return getattr(self.loader, name)


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Finds torchvision with the other finders and wraps its loader in _DeclaringLoader."""

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or self._finding:
            return None
        self._finding = True
        try:
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        break
            else:
                return None
        finally:
            self._finding = False
        if spec.loader is not None and not isinstance(spec.loader, _DeclaringLoader):
            spec.loader = _DeclaringLoader(spec.loader)
        return spec


def install() -> None:
    """Put the hook first in sys.meta_path (cheap: imports nothing); a no-op once torchvision is imported or the
    hook is in."""
    if "torchvision" not in sys.modules and not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())
