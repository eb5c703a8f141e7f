"""scaleproof: prove what an inference stack delivers.

Heavy and optional dependencies (torch, onnxruntime, tensorrt, papermill) are imported lazily by the
modules that need them, so `import scaleproof` works anywhere.
"""

__version__ = "0.1.0"
