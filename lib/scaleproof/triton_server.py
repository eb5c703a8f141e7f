"""Serve one model of a scaleproof-deployed Triton repository with a real Triton server on CPU.

Runs in its own environment (`make serve-env` makes `.venv-serve`): NVIDIA's `nvidia-pytriton` package ships
a `tritonserver` binary with the Python backend only, and pins numpy below 2, which the main environment
does not take. So this file imports nothing from scaleproof and is run as a script:

    .venv-serve/bin/python lib/scaleproof/triton_server.py --repo DIR --model NAME --grpc-port 8001

What is served: the model's pinned version, its ONNX file run by ONNX Runtime on the CPU, behind Triton's
own C++ dynamic batcher configured from the deployed `config.pbtxt` (max batch size, preferred sizes,
queue delay). The difference from the repository as written: Triton's `onnxruntime` backend is not in that
binary, so ONNX Runtime runs in this process behind the Python backend (PyTriton's proxy). Requests travel
client -> Triton (HTTP/gRPC, batching) -> this process -> ONNX Runtime, and back.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path

# Triton data types in config.pbtxt -> numpy (the ones ONNX models of this project use)
TRITON_TO_NUMPY = {"TYPE_FP32": "float32", "TYPE_FP16": "float16", "TYPE_FP64": "float64", "TYPE_INT64": "int64",
                   "TYPE_INT32": "int32", "TYPE_INT16": "int16", "TYPE_INT8": "int8", "TYPE_UINT8": "uint8",
                   "TYPE_BOOL": "bool"}


def read_config(model_dir: Path):
    """The deployed config.pbtxt as Triton's own ModelConfig protobuf."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def pinned_model_file(model_dir: Path, config) -> Path:
    versions = list(config.version_policy.specific.versions)
    if len(versions) != 1:
        raise SystemExit(f"{model_dir}: expected one pinned version in version_policy, found {versions}")
    f = model_dir / str(versions[0]) / (config.default_model_filename or "model.onnx")
    if not f.is_file():
        raise SystemExit(f"{f} does not exist: the pinned version has no model file")
    return f


def tensors(specs, names_to_type):
    import numpy as np
    from pytriton.model_config import Tensor

    return [Tensor(name=s.name, dtype=np.dtype(TRITON_TO_NUMPY[names_to_type[s.data_type]]), shape=tuple(s.dims))
            for s in specs]


def die_with_parent() -> None:
    """SIGTERM when the process that started this one dies (Linux), so a killed serve-bench leaves no server."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the caller's stop() is the only guard
        return
    if os.getppid() == 1:  # the parent died before the call
        raise SystemExit("the process that started this server is gone")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, type=Path, help="a repository written by `scaleproof deploy`")
    ap.add_argument("--model", required=True, help="the model folder's name in the repository")
    ap.add_argument("--grpc-port", type=int, default=8001, help="Triton's gRPC port")
    ap.add_argument("--http-port", type=int, default=8000, help="Triton's HTTP port")
    ap.add_argument("--metrics-port", type=int, default=8002, help="Triton's Prometheus metrics port")
    ap.add_argument("--metrics-config", action="append", default=[], metavar="KEY=VALUE",
                    help="Triton's --metrics-config (e.g. summary_latencies=true for P99 as a metric); repeatable")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    ap.add_argument("--max-batch", type=int, default=0,
                    help="largest batch Triton forms (0: the config's max_batch_size); serve-bench passes the batcher's")
    ap.add_argument("--queue-delay-us", type=int, default=-1,
                    help="dynamic batcher queue delay in microseconds (-1: the config's)")
    args = ap.parse_args(argv)
    die_with_parent()

    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig
    from tritonclient.grpc import model_config_pb2

    model_dir = args.repo / args.model
    config = read_config(model_dir)
    if config.backend != "onnxruntime":
        raise SystemExit(f"{args.model} has backend {config.backend!r}; this server runs onnxruntime models only")
    model_file = pinned_model_file(model_dir, config)
    opts = ort.SessionOptions()
    if args.threads:
        opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
    output_names = [o.name for o in config.output]
    type_names = {v: k for k, v in model_config_pb2.DataType.items()}

    @batch
    def infer(**inputs):
        return dict(zip(output_names, session.run(output_names, inputs), strict=True))

    db = config.dynamic_batching
    max_batch = args.max_batch or config.max_batch_size
    delay_us = db.max_queue_delay_microseconds if args.queue_delay_us < 0 else args.queue_delay_us
    preferred = [b for b in db.preferred_batch_size if b <= max_batch] or [max_batch]
    model_config = ModelConfig(max_batch_size=max_batch, batcher=DynamicBatcher(
        max_queue_delay_microseconds=delay_us, preferred_batch_size=preferred))
    # the backend's stub process embeds whatever libpython3.11 the loader finds first (the system's, here
    # 3.11.2) but imports this interpreter's standard library: point the loader at this interpreter's own
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH")]))
    triton_config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
                                 metrics_config=args.metrics_config or None, log_verbose=0)
    # PyTriton guards the statistics extension with a token by default; a stock tritonserver (the Kubernetes
    # objects' image) serves it openly, and serve-bench and `scaleproof watch` read it: the rest stays guarded
    security = TritonSecurityConfig(restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    with Triton(config=triton_config, security_config=security) as triton:
        triton.bind(model_name=args.model, infer_func=infer, inputs=tensors(config.input, type_names),
                    outputs=tensors(config.output, type_names), config=model_config, strict=False)
        print(f"serving {args.model} ({model_file.relative_to(args.repo)}) on gRPC :{args.grpc_port}, "
              f"HTTP :{args.http_port}; pid {os.getpid()}", flush=True)
        triton.serve()


if __name__ == "__main__":
    sys.exit(main())
