"""TensorRT engines built and run for real (skipped where `import tensorrt` fails or there is no GPU).

One command on a machine with TensorRT: `pytest -m tensorrt tests/test_tensorrt_gpu.py`. FP16 and INT8
engines of the digits model and of ResNet-50 are built from the run's ONNX artifacts, compared with
ONNX Runtime's outputs of the same models, and timed; a short LoadGen Server run drives each one.
"""

import numpy as np
import pytest

from scaleproof import stages
from scaleproof.backends.onnxruntime import ort_session
from scaleproof.bench.loadgen import LoadgenSettings, Scenario, run_scenario
from scaleproof.bench.timing import time_engine
from scaleproof.config import Params
from scaleproof.datasets import splits_for
from scaleproof.io_spec import ModelIO, feed_resize, feed_slice
from scaleproof.stages import build, calibrate, export, validate
from scaleproof.stages.export import parity

pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu]

MODELS = {
    "digits": dict(model="zoo:digits-cnn", calib_samples=128, max_batch=64),
    "resnet50": dict(model="zoo:resnet50", calib_samples=32, val_samples=64, max_batch=32, batcher_max_batch=16,
                     batch_sizes=[1, 8, 32], sensitivity=False),
}


@pytest.fixture(scope="module", params=list(MODELS))
def trt_run(request, tmp_path_factory):
    params = Params(run_dir=str(tmp_path_factory.mktemp(request.param)), backend="tensorrt",
                    precisions=["fp32", "fp16", "int8"], **MODELS[request.param])
    export.run(params)
    calibrate.run(params)
    build.run(params)
    validate.run(params)
    return params


def trt_engines(params):
    return [e for e in stages.read_result(params.run_path, "03_build")["engines"] if e["backend"] == "tensorrt"]


def test_fp16_and_int8_engines_are_built_strongly_typed_with_fusion_recorded(trt_run):
    engines = {e["precision"]: e for e in trt_engines(trt_run)}
    assert {"fp16", "int8"} <= set(engines)
    for e in engines.values():
        layers = e["tensorrt"]["layers"]
        assert layers["detailed"] and 0 < layers["engine_layers"] and layers["onnx_nodes"] > 0


def test_engines_match_onnx_runtime_on_the_same_models(trt_run):
    exported = stages.read_result(trt_run.run_path, "01_export")
    x = feed_slice(splits_for(trt_run, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x, 0, 64)
    for e in trt_engines(trt_run):
        sess = ort_session(trt_run.run_path / e["source"])
        ref = sess.run(None, x)[0]
        engine = build.load_engine(trt_run.run_path, e)
        try:
            out = np.concatenate([engine.infer(feed_slice(x, i, i + 16))[0] for i in range(0, 64, 16)])
        finally:
            engine.close()
        p = parity(ref, out)
        assert p["finite"] and p["top1_agreement"] >= 0.95, (e["name"], p)


def test_engines_pass_the_accuracy_gate(trt_run):
    v = stages.read_result(trt_run.run_path, "04_validate")
    for row in v["engines"]:
        if row["backend"] == "tensorrt":
            assert row["passed"], row


def test_engines_are_timed_and_driven_by_loadgen(trt_run, tmp_path):
    exported = stages.read_result(trt_run.run_path, "01_export")
    x = feed_slice(splits_for(trt_run, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x, 0, 256)
    for e in trt_engines(trt_run):
        engine = build.load_engine(trt_run.run_path, e)
        try:
            t = time_engine(engine, feed_resize(x, 8), warmup=5, min_repeats=20, min_time_s=0.3, max_cov=0.5)
            assert t.valid and t.throughput > 0
            engine.load_samples(x)
            cfg = LoadgenSettings(min_duration_s=1.0, min_queries=500, sla_p99_ms=15.0, max_batch=8, max_delay_ms=1.0)
            run = run_scenario(engine, x, Scenario.server, cfg, tmp_path / e["name"], target_qps=1000)
            assert run.valid, run.reason
        finally:
            engine.close()
