"""INT8 that keeps its accuracy: sensitivity, mixed precision, keyed calibration cache, FP16, quantizer choice."""

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest

from scaleproof import stages
from scaleproof.config import CalibMethod, Int8Format, Params, Quantizer
from scaleproof.datasets import digits_splits, select
from scaleproof.errors import ParamsError
from scaleproof.quantization import calib_cache
from scaleproof.quantization import quantizers as quantize
from scaleproof.quantization.int8_format import choose_int8_format
from scaleproof.quantization.quantizers import OrtQuantizer, method_settings
from scaleproof.stages import build, calibrate, export, validate
from scaleproof.stages.calibrate import int8_format

PLANTED = dict(model="tests.user_models:planted_outlier", input_shape=[3, 16, 16], calib_samples=128,
               val_samples=256, batch_sizes=[8], max_batch=8, batcher_max_batch=8, min_time_s=0.1)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    params = Params(run_dir=str(tmp_path_factory.mktemp("planted")), **PLANTED)
    export.run(params)
    return params, calibrate.run(params)


def test_planted_outlier_is_ranked_first_and_mixed_precision_restores_the_gate(planted):
    params, r = planted
    # every node quantized: the ~1e4 tensor between `amplify` and `head` wipes out the real features
    assert not r["int8_all_nodes"]["passed"] and r["int8_all_nodes"]["top1_agreement"] < 0.5
    ranking = r["sensitivity"]
    assert all(x["nodes"] == [x["group"]] for x in ranking)  # few nodes: each judged alone
    gemms = {x["group"] for x in ranking if x["op_types"] == ["Gemm"]}
    assert len(gemms) == 2  # amplify (its output is quantized) and head (its input is)
    assert {x["group"] for x in ranking[:2]} == gemms and all(x["accuracy_cost_pts"] > 50 for x in ranking[:2])
    assert all(x["accuracy_cost_pts"] < 1 for x in ranking[2:])
    assert [x["rank"] for x in ranking] == list(range(1, len(ranking) + 1))
    # mixed precision: fewest first, stops at the first pass
    steps = r["mixed_precision"]["steps"]
    assert [len(s["kept_fp32"]) for s in steps] == list(range(1, len(steps) + 1))
    assert r["mixed_precision"]["passed"] and r["int8_passed"] and set(r["kept_fp32"]) == gemms
    assert r["int8_onnx"] == "model.int8.onnx" and r["int8"]["top1_agreement"] >= params.min_agreement
    assert r["statement"].startswith(f"INT8 with 2 of {len(ranking)} quantized nodes kept in FP32")
    assert set(r["speed_cpu"]) == {"fp32", "int8"} and r["speed_cpu"]["int8"]["samples_per_s"] > 0
    # the mixed model really keeps those nodes in FP32: none of them reads a dequantized tensor
    run_int8 = {n["node"] for n in quantize.quantized_nodes(params.run_path / "calibrate" / r["int8_onnx"])}
    assert not run_int8 & gemms and run_int8


def test_mixed_precision_model_is_what_the_engines_are_built_from_and_passes_validation(planted):
    params, r = planted
    build.run(params)
    v = validate.run(params)
    int8 = next(e for e in v["engines"] if e["engine"] == "onnxruntime-int8")
    assert int8["passed"] and int8["top1_agreement"] >= params.min_agreement


def test_limit_reached_is_reported_and_the_full_int8_model_kept(tmp_path, planted):
    params, _ = planted
    p = params.with_(run_dir=str(tmp_path), mixed_precision_max_nodes=1, sensitivity=False)
    export.run(p)
    r = calibrate.run(p)
    assert not r["int8_passed"] and not r["mixed_precision"]["passed"] and r["kept_fp32"] == []
    assert "mixed_precision_max_nodes=1" in r["mixed_precision"]["reason"]
    assert r["int8_onnx"] == "model.int8.onnx" and r["int8"] == r["int8_all_nodes"]  # the all-nodes model kept
    assert sorted(p.name for p in (tmp_path / "calibrate").glob("*.onnx")) == ["model.int8.onnx"]  # no fp16 asked
    assert r["sensitivity"], "mixed precision needs the ranking even when sensitivity is off"


def test_digits_methods_table_and_sensitivity_and_no_fp16_model_unasked(digits_run):
    r = stages.read_result(digits_run.run_path, "02_calibrate")
    assert [m["method"] for m in r["methods"]] == ["minmax", "entropy", "percentile"]
    assert all(m["int8_cpu"]["samples_per_s"] > 0 and "top1_delta_pts" in m for m in r["methods"])
    assert r["methods"][2]["percentile"] == 99.999
    assert len(r["sensitivity"]) == r["qdq"]["int8_nodes"] > 0 and r["mixed_precision"] is None
    assert r["statement"].startswith(f"INT8 with all {r['qdq']['int8_nodes']} quantized nodes in INT8")
    # precisions fp32 and int8: no engine uses an FP16 model, so none is made (nor judged)
    assert r["fp16"] is None and not (digits_run.run_path / "calibrate" / "model.fp16.onnx").exists()
    built = stages.read_result(digits_run.run_path, "03_build")
    assert {e["precision"] for e in built["engines"]} == {"fp32", "int8"}


# the keyed calibration cache ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_onnx(tmp_path_factory):
    params = Params(run_dir=str(tmp_path_factory.mktemp("cache-model")))
    export.run(params)
    return params.run_path / "export" / "model.onnx"


def scales(path: Path) -> dict[str, float]:
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return {n.input[1]: float(np.ravel(inits[n.input[1]])[0]) for n in m.graph.node if n.op_type == "QuantizeLinear"}


def quantizer_for(src: Path, tmp: Path, cache: Path, n: int = 64, seed: int = 0) -> OrtQuantizer:
    calib = select(digits_splits()["calib"], n, seed)
    fmt = int8_format(Params())  # the format this CPU's INT8 kernels want
    return OrtQuantizer(src, tmp / f"work-{n}-{seed}", calib.x, True, cache, fmt)


def test_cache_is_reused_under_the_same_key_and_gives_the_same_model(tmp_path, digits_onnx):
    cache, m = tmp_path / "cache", CalibMethod.minmax
    s = method_settings(m, 99.999)
    q1 = quantizer_for(digits_onnx, tmp_path, cache)
    r1, status1 = q1.ranges(m, s)
    q2 = quantizer_for(digits_onnx, tmp_path / "again", cache)
    r2, status2 = q2.ranges(m, s)
    assert status1["status"] == "miss" and status2["status"] == "hit" and r1 == r2
    a = q1.quantize(tmp_path / "a.onnx", m, s, r1)
    b = q2.quantize(tmp_path / "b.onnx", m, s, None)  # calibrated from scratch, no cache involved
    assert scales(a) == scales(b)


def test_cache_under_another_key_is_refused_naming_why_and_recalibrated(tmp_path, digits_onnx):
    cache, m = tmp_path / "cache", CalibMethod.percentile
    quantizer_for(digits_onnx, tmp_path, cache).ranges(m, method_settings(m, 99.999))
    # other calibration data, same model: refused, calibrated again, cache now under the new key
    q = quantizer_for(digits_onnx, tmp_path, cache, n=32, seed=1)
    _, status = q.ranges(m, method_settings(m, 99.999))
    assert status["status"] == "refused" and "calib_data_sha256: cached" in status["reason"]
    assert calib_cache.lookup(q.cache_path(m), q.key(m, method_settings(m, 99.999))).status == "hit"
    # another percentile: the settings differ
    _, status = q.ranges(m, method_settings(m, 99.9))
    assert status["status"] == "refused" and "settings: cached" in status["reason"] and "99.999" in status["reason"]


def test_cache_copied_from_another_model_is_refused(tmp_path, digits_onnx):
    q = quantizer_for(digits_onnx, tmp_path, tmp_path / "cache")
    s = method_settings(CalibMethod.minmax, 99.999)
    other = calib_cache.cache_key("0" * 64, q.data_sha256, "minmax", s, "onnxruntime", q.version, q.device)
    calib_cache.store(q.cache_path(CalibMethod.minmax), other, {"CLS": "TensorsData", "data": {}})
    _, status = q.ranges(CalibMethod.minmax, s)
    assert status["status"] == "refused" and "onnx_sha256: cached 000000000000…" in status["reason"]


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": "something else"}'])
def test_empty_or_unreadable_cache_is_replaced_with_a_warning(tmp_path, digits_onnx, content):
    q = quantizer_for(digits_onnx, tmp_path, tmp_path / "cache")
    path, s = q.cache_path(CalibMethod.minmax), method_settings(CalibMethod.minmax, 99.999)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.warns(UserWarning, match="empty or unreadable"):
        _, status = q.ranges(CalibMethod.minmax, s)
    assert status["status"] == "unreadable"
    assert calib_cache.lookup(path, q.key(CalibMethod.minmax, s)).status == "hit"


@pytest.mark.parametrize("spoil, why", [
    (lambda d: d.clear(), "no tensor ranges"),
    (lambda d: d[next(iter(d))].pop("highest"), "lacks a lowest or highest value"),
    (lambda d: d[next(iter(d))]["lowest"].update(data=[float("nan")]), "non-finite range"),
    (lambda d: d[next(iter(d))]["highest"].update(data=[float("inf")]), "non-finite range"),
    (lambda d: d[next(iter(d))]["lowest"].update(data=[1e9]), "lowest above highest"),
])
def test_a_cache_with_the_right_key_but_unusable_ranges_is_replaced(tmp_path, digits_onnx, spoil, why):
    """Empty, partial or non-finite ranges under a matching key: refused with a warning, calibrated again, and the
    shared cache folder holds good ranges afterwards (nothing is poisoned)."""
    import json

    q = quantizer_for(digits_onnx, tmp_path, tmp_path / "cache")
    m = CalibMethod.minmax
    s = method_settings(m, 99.999)
    good, _ = q.ranges(m, s)
    doc = json.loads(q.cache_path(m).read_text())
    spoil(doc["ranges"]["data"])
    q.cache_path(m).write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=why):
        again, status = q.ranges(m, s)
    assert status["status"] == "unreadable" and why in status["reason"] and again == good
    assert calib_cache.lookup(q.cache_path(m), q.key(m, s)).ranges == good


def test_key_differences_name_each_field():
    a = calib_cache.cache_key("a" * 64, "b" * 64, "minmax", {"x": 1}, "onnxruntime", "1.0", "cpu-amd-epyc-avx2")
    b = calib_cache.cache_key("a" * 64, "c" * 64, "entropy", {"x": 1}, "onnxruntime", "1.1", "cpu-amd-epyc-avx2")
    diff = calib_cache.key_differences(a, b)
    assert [d.split(":")[0] for d in diff] == ["calib_data_sha256", "method", "quantizer_version"]
    assert "cached bbbbbbbbbbbb…, now cccccccccccc…" in diff[0]


# quantizer choice ---------------------------------------------------------------------------------

def test_quantizer_auto_takes_modelopt_only_where_it_is_installed(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n.startswith("modelopt") else real(n, *a))
    assert quantize.resolve_quantizer(Quantizer.auto) == "onnxruntime"
    assert quantize.resolve_quantizer(Quantizer.onnxruntime) == "onnxruntime"
    with pytest.raises(ParamsError, match=r"needs NVIDIA ModelOpt \(pip install 'scaleproof\[modelopt\]'"):
        quantize.resolve_quantizer(Quantizer.modelopt)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n.startswith("modelopt") else real(n, *a))
    assert quantize.resolve_quantizer(Quantizer.auto) == "modelopt"


def test_modelopt_refuses_percentile_before_any_work(tmp_path):
    fmt = choose_int8_format(Int8Format.auto, "avx2", "modelopt", gpu_engines=False)
    q = quantize.ModelOptQuantizer(tmp_path / "m.onnx", tmp_path, {"input": np.zeros((1, 1), np.float32)}, True, tmp_path,
                                   fmt)
    with pytest.raises(ParamsError, match="not percentile; use quantizer=onnxruntime"):
        q.ranges(CalibMethod.percentile, method_settings(CalibMethod.percentile, 99.9))


def test_bad_calibration_data_stops_the_stage_before_quantizing(tmp_path, monkeypatch):
    params = Params(run_dir=str(tmp_path))
    export.run(params)
    from scaleproof import datasets

    bad = {"calib": datasets.Split({"input": np.zeros((4, 1, 7, 7), np.float32)}, None), "val": datasets.Split(
        {"input": np.zeros((4, 1, 8, 8), np.float32)}, None)}
    monkeypatch.setattr(calibrate, "splits_for", lambda *a: bad)
    monkeypatch.setattr(calibrate, "make_quantizer", lambda *a, **k: pytest.fail("quantizer built with bad data"))
    with pytest.raises(ParamsError, match=r"shape \(4, 1, 7, 7\); expected input: \(N, 1, 8, 8\) float32"):
        calibrate.run(params)


def test_without_int8_in_precisions_only_the_fp16_model_is_made(tmp_path):
    params = Params(run_dir=str(tmp_path), precisions=["fp32", "fp16"])
    export.run(params)
    r = calibrate.run(params)
    assert r["int8_onnx"] is None and "int8 is not in precisions" in r["statement"]
    assert (tmp_path / "calibrate" / "model.fp16.onnx").is_file() and not (tmp_path / "calibrate" / "cache").exists()
    assert r["fp16"]["passed"]
    half = onnx.load(str(tmp_path / "calibrate" / r["fp16"]["fp16_onnx"]))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert half.graph.input[0].type.tensor_type.elem_type == f32 == half.graph.output[0].type.tensor_type.elem_type
    assert any(i.data_type == f16 for i in half.graph.initializer)


def test_backend_torch_makes_no_onnx_int8_or_fp16_model_torch_builds_them(tmp_path):
    """backend=torch: INT8 is torchao's and FP16 torch's own (built from the weights in 03_build), so neither an ONNX
    INT8 model is calibrated nor an FP16 ONNX model converted, unless ONNX Runtime CUDA engines (onnx_gpu) read it."""
    params = Params(run_dir=str(tmp_path), precisions=["fp32", "fp16", "int8"], backend="torch")
    export.run(params)
    r = calibrate.run(params)
    assert r["int8_onnx"] is None and "backend=torch builds INT8 with torchao" in r["statement"]
    assert r["fp16"] is None and not (tmp_path / "calibrate" / "model.fp16.onnx").exists()
    assert not (tmp_path / "calibrate" / "cache").exists()
    r = calibrate.run(params.with_(onnx_gpu=True))
    assert r["fp16"]["fp16_onnx"] == "model.fp16.onnx" and (tmp_path / "calibrate" / "model.fp16.onnx").is_file()


def test_entropy_calibration_searches_a_threshold_instead_of_taking_the_range(tmp_path, digits_onnx):
    # with 128 histogram bins and 128 quantized bins (quantize_static's defaults) entropy == min-max
    q = quantizer_for(digits_onnx, tmp_path, tmp_path / "cache", n=128)
    got = {}
    for m in (CalibMethod.minmax, CalibMethod.entropy):
        s = method_settings(m, 99.999)
        got[m] = scales(q.quantize(tmp_path / f"{m.value}.onnx", m, s, q.ranges(m, s)[0]))
    assert got[CalibMethod.minmax].keys() == got[CalibMethod.entropy].keys()
    assert any(got[CalibMethod.entropy][k] < 0.999 * v for k, v in got[CalibMethod.minmax].items())


# the INT8 format ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, weight_range, zero_points", [
    (Int8Format.s8s8, (-127, 127), {0}),  # symmetric signed: the full signed range, zero point 0
    (Int8Format.s8s8_reduced_range, (-64, 64), {0}),  # 7-bit weights: what non-VNNI CPUs sum without saturating
])
def test_the_format_is_what_the_quantized_weights_hold(tmp_path, digits_onnx, fmt, weight_range, zero_points):
    from onnx import numpy_helper

    calib = select(digits_splits()["calib"], 64, 0)
    choice = choose_int8_format(fmt, "avx2", "onnxruntime", gpu_engines=False)
    q = OrtQuantizer(digits_onnx, tmp_path / "work", calib.x, True, tmp_path / "cache", choice)
    s = method_settings(CalibMethod.minmax, 99.999, choice.symmetric_activations)
    path = q.quantize(tmp_path / "m.onnx", CalibMethod.minmax, s, q.ranges(CalibMethod.minmax, s)[0])
    g = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    weights = [inits[n.input[0]] for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
               and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim > 1]
    assert weights and min(w.min() for w in weights) >= weight_range[0] and max(w.max() for w in weights) <= weight_range[1]
    assert max(w.max() for w in weights) > weight_range[1] // 2  # the range is used, not merely respected
    zps = {int(v) for n in g.node if n.op_type == "QuantizeLinear" and len(n.input) > 2 for v in np.ravel(inits[n.input[2]])}
    assert zps == zero_points


def test_u8u8_quantizes_activations_asymmetrically_into_uint8(tmp_path, digits_onnx):
    calib = select(digits_splits()["calib"], 64, 0)
    choice = choose_int8_format(Int8Format.u8u8, "avx2", "onnxruntime", gpu_engines=False)
    q = OrtQuantizer(digits_onnx, tmp_path / "work", calib.x, True, tmp_path / "cache", choice)
    s = method_settings(CalibMethod.minmax, 99.999, choice.symmetric_activations)
    path = q.quantize(tmp_path / "m.onnx", CalibMethod.minmax, s, q.ranges(CalibMethod.minmax, s)[0])
    g = onnx.load(str(path)).graph
    inits = {i.name: i for i in g.initializer}
    activation_zps = [inits[n.input[2]] for n in g.node if n.op_type == "QuantizeLinear"]  # weights are stored quantized
    assert activation_zps and {z.data_type for z in activation_zps} == {onnx.TensorProto.UINT8}
    assert any(onnx.numpy_helper.to_array(z).any() for z in activation_zps)  # asymmetric: not every zero point is 0


def test_a_calibration_cache_from_another_cpu_type_is_refused(tmp_path, digits_onnx):
    q = quantizer_for(digits_onnx, tmp_path, tmp_path / "cache")
    s = method_settings(CalibMethod.minmax, 99.999)
    theirs = {**q.key(CalibMethod.minmax, s), "device": "cpu-amd-epyc-sse"}
    calib_cache.store(q.cache_path(CalibMethod.minmax), theirs, {"CLS": "TensorsData", "data": {"x": [0.0, 1.0]}})
    _, status = q.ranges(CalibMethod.minmax, s)
    assert status["status"] == "refused" and f"device: cached cpu-amd-epyc-sse, now {q.device}" in status["reason"]
