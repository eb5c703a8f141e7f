"""PyTorch eager backend: FP32 on CPU is the baseline every other engine is compared with."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..engine_store import Sidecar, check_engine, current_device, save_engine
from ..errors import ParamsError
from ..provenance import sha256_file
from .base import BuildInputs, Engine, usable_threads

NAME = "torch"
CPU_PRECISIONS = ("fp32",)


def version() -> str:
    import torch

    return torch.__version__


class TorchEngine(Engine):
    backend = NAME

    def __init__(self, module, sc: Sidecar, threads: int) -> None:
        import torch

        torch.set_num_threads(usable_threads(threads))
        self.name, self.precision = sc.name, sc.precision
        self.max_batch = sc.input_profile["max_batch"]
        self.device = "cpu"
        self._module = module.eval()

    def infer(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self._module(torch.from_numpy(x)).numpy()


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str) -> Path:
    """Store the model's weights as the engine (safetensors), tied to the model spec that rebuilds it."""
    from safetensors.torch import save_file

    from ..zoo import load_model

    if precision not in CPU_PRECISIONS:
        raise ParamsError(f"torch backend on CPU builds {CPU_PRECISIONS}, not {precision}")
    name = f"{NAME}-{precision}"
    t0 = time.perf_counter()
    bundle = load_model(inputs.model_spec, inputs.input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in bundle.module.state_dict().items()}, str(out))
        weights_sha = sha256_file(out)
        sc = Sidecar(
            name=name, backend=NAME, backend_version=version(), precision=precision, **current_device(),
            input_profile={"name": inputs.input_name, "shape": list(inputs.input_shape), "min_batch": 1,
                           "max_batch": inputs.max_batch},
            source=source_label, source_sha256=weights_sha, engine_file=out.name,
            build_seconds=round(time.perf_counter() - t0, 3),
            extra={"model_spec": inputs.model_spec, "mode": "eager"},
        )
        return save_engine(store, sc, out)


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> TorchEngine:
    from safetensors.torch import load_file

    from ..zoo import load_model

    sc, path = check_engine(sidecar_path, version(), source_sha256)
    bundle = load_model(sc.extra["model_spec"], sc.input_profile["shape"])
    bundle.module.load_state_dict(load_file(str(path)))
    return TorchEngine(bundle.module, sc, threads)
