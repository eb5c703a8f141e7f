"""TensorRT backend logic that needs no GPU: version dispatch, precision per version, typing fallback,
timing-cache keying/corruption/concurrency, inspector summary, sidecar compatibility, build-engine CLI.
The build path runs against tests/fake_tensorrt.py; real builds are in test_tensorrt_gpu.py."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest

from scaleproof import cli
from scaleproof.backends import tensorrt as trt_backend
from scaleproof.backends.trt_api import (
    TrtApi,
    TrtOptions,
    parser_error_text,
    precision_plan,
    summarize_layers,
)
from scaleproof.backends.trt_timing_cache import TimingCacheFile
from scaleproof.config import Params
from scaleproof.engine_store import Sidecar, check_engine, read_sidecar, save_engine
from scaleproof.errors import ArtifactError, EngineMismatchError, ParamsError
from scaleproof.io_spec import ModelIO
from scaleproof.stages import export
from tests.fake_tensorrt import FakeConfig, FakeEngine, FakeTrt

FLAGS = SimpleNamespace(NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=5))
ALL = {"fp32", "fp16", "int8"}


@pytest.mark.parametrize("version, major", [("10.13.0.35", 10), ("10.0.1", 10), ("11.1.0", 11), ("11.0.0.9", 11)])
def test_version_dispatch(version, major):
    api = TrtApi.from_version(version)
    assert api.major == major and api.weak_typing_available == (major == 10)


@pytest.mark.parametrize("version", ["8.6.1", "7.2", "nightly"])
def test_unsupported_versions_are_refused(version):
    with pytest.raises(ParamsError, match="TensorRT"):
        TrtApi.from_version(version)


def test_network_flags_per_version():
    v10, v11 = TrtApi.from_version("10.13.0"), TrtApi.from_version("11.1.0")
    assert v10.network_flags(FLAGS, strongly_typed=True) == 1 << 5 and v10.network_flags(FLAGS, False) == 0
    assert v11.network_flags(FLAGS, strongly_typed=True) == 0  # strongly typed is 11.x's default and only mode
    with pytest.raises(ParamsError, match="strongly typed networks only"):
        v11.network_flags(FLAGS, strongly_typed=False)


def test_precision_comes_from_the_model_and_weak_typing_only_on_10x():
    v10, v11 = TrtApi.from_version("10.13.0"), TrtApi.from_version("11.1.0")
    for api in (v10, v11):
        assert precision_plan(api, "fp16", ALL).onnx == "fp16" and precision_plan(api, "int8", ALL).onnx == "int8"
        assert precision_plan(api, "fp32", ALL).builder_flags == ()
    weak16, weak8 = precision_plan(v10, "fp16", ALL, weak=True), precision_plan(v10, "int8", ALL, weak=True)
    assert (weak16.onnx, weak16.builder_flags, weak16.strongly_typed) == ("fp32", ("FP16",), False)
    assert (weak8.onnx, weak8.builder_flags) == ("int8", ("INT8", "FP16"))
    with pytest.raises(ParamsError, match="no weak typing"):
        precision_plan(v11, "fp16", ALL, weak=True)
    with pytest.raises(ArtifactError, match=r"calibrate/model.int8.onnx \(Q/DQ\)"):
        precision_plan(v11, "int8", {"fp32", "fp16"})
    with pytest.raises(ParamsError, match="BF16 or FP8"):
        precision_plan(v10, "bf16", ALL)


@pytest.mark.parametrize("version, reads", [("10.0.1", "device_memory_size"), ("10.13.0", "device_memory_size_v2"),
                                           ("11.1.0", "device_memory_size_v2")])
def test_device_memory_is_read_on_10x_and_11x(version, reads):
    engine = FakeEngine(FakeTrt(version), {"inputs": [], "outputs": []})
    assert TrtApi.from_version(version).device_memory_bytes(engine) == FakeEngine.ACTIVATION_BYTES
    assert hasattr(engine, "device_memory_size") == version.startswith("10.")  # 11.x removed the old name only
    assert hasattr(engine, "device_memory_size_v2") == (version != "10.0.1")


def test_profile_shapes_and_bad_ranges():
    assert TrtOptions(min_batch=1, opt_batch=0, max_batch=64).profile((3, 8, 8)) == ((1, 3, 8, 8), (64, 3, 8, 8),
                                                                                  (64, 3, 8, 8))
    assert TrtOptions(opt_batch=16, max_batch=64).profile((4,))[1] == (16, 4)
    with pytest.raises(ParamsError, match="trt_min_batch"):
        TrtOptions(min_batch=32, opt_batch=8, max_batch=64).profile((4,))


def test_parser_errors_name_the_node():
    err = SimpleNamespace(node=lambda: 7, node_name=lambda: "node_Conv_58", node_operator=lambda: "Conv",
                          desc=lambda: "unsupported dilation")
    assert parser_error_text(err) == "node 7 (node_Conv_58, Conv): unsupported dilation"
    bare = SimpleNamespace(node=lambda: -1, desc=lambda: "invalid model")
    assert parser_error_text(bare) == "model: invalid model"


@pytest.mark.parametrize("io", [{"Bindings": ["input", "logits"]},  # 10.x: names
                                {"I/O Tensors": [{"Name": "input"}, {"Name": "logits"}]}])  # 11.x: objects
def test_layer_summary_counts_fusion_apart_from_reformats_noops_and_foreign_nodes(io):
    info = {"Layers": [{"Name": "a + b + c", "LayerType": "CaskConvolution"}, {"Name": "d", "LayerType": "Pooling"},
                       {"Name": "Reformatting CopyNode for Input Tensor 0 to a + b + c", "LayerType": "Reformat"},
                       {"Name": "flatten + reshape_copy", "LayerType": "NoOp"},
                       {"Name": "{ForeignNode[/fc1/MatMul.../fc2/Add]}", "LayerType": "Myelin"}], **io}
    s = summarize_layers(json.dumps(info), onnx_nodes=9)
    assert (s["onnx_nodes"], s["engine_layers"], s["fused_layers"], s["network_layers_in_fused"]) == (9, 5, 1, 3)
    assert s["reformat_layers"] == 1 and s["foreign_nodes"] == 1 and s["detailed"]
    assert s["io_tensors"] == ["input", "logits"]
    names_only = summarize_layers(json.dumps({"Layers": ["x + y", "z", "Reformatting CopyNode for x + y"]}), 3)
    assert names_only["fused_layers"] == 1 and names_only["reformat_layers"] == 1 and not names_only["detailed"]


# timing cache ---------------------------------------------------------------------------------------

def cache_file(folder: Path, version: str = "10.13.0") -> TimingCacheFile:
    return TimingCacheFile(folder, version, "h100-80gb-hbm3", "9.0")


def test_timing_cache_is_created_then_reused(tmp_path):
    trt = FakeTrt()
    first, cfg = cache_file(tmp_path), FakeConfig(trt)
    assert first.attach(cfg)["loaded"] == "new"
    cfg.cache.entries.add("t1")
    first.save(cfg)
    assert first.path.name == "timing-h100-80gb-hbm3-trt10.13.0.cache"
    again, cfg2 = cache_file(tmp_path), FakeConfig(trt)
    assert again.attach(cfg2)["loaded"] == "hit" and cfg2.cache.entries == {"t1"}


def test_timing_cache_of_another_version_is_ignored_with_a_warning(tmp_path):
    made = cache_file(tmp_path, "10.13.0")
    cfg = FakeConfig(FakeTrt())
    made.attach(cfg)
    cfg.cache.entries.add("t1")
    made.save(cfg)
    other = cache_file(tmp_path, "10.14.1")
    other.path.write_bytes(made.path.read_bytes())  # a copied file without its key
    with pytest.warns(UserWarning, match="no matching key file"):
        assert other.attach(FakeConfig(FakeTrt()))["loaded"] == "ignored"


def test_corrupt_timing_cache_warns_builds_with_an_empty_one_and_is_replaced(tmp_path):
    tc = cache_file(tmp_path)
    cfg = FakeConfig(FakeTrt())
    tc.attach(cfg)
    tc.save(cfg)
    tc.path.write_bytes(b"\x00garbage")
    again, cfg2 = cache_file(tmp_path), FakeConfig(FakeTrt())
    with pytest.warns(UserWarning, match="corrupt or unusable"):
        assert again.attach(cfg2)["loaded"] == "corrupt"
    assert cfg2.cache.entries == set()
    cfg2.cache.entries.add("fresh")
    again.save(cfg2)
    assert json.loads(again.path.read_bytes()) == ["fresh"]


def test_concurrent_builds_merge_their_timing_caches_instead_of_clobbering(tmp_path):
    a, b = cache_file(tmp_path), cache_file(tmp_path)
    cfg_a, cfg_b = FakeConfig(FakeTrt()), FakeConfig(FakeTrt())
    a.attach(cfg_a)
    b.attach(cfg_b)  # both loaded the same (empty) state
    cfg_a.cache.entries.add("from-a")
    cfg_b.cache.entries.add("from-b")
    a.save(cfg_a)
    status = b.save(cfg_b)
    assert status["merged_concurrent_writer"] and json.loads(b.path.read_bytes()) == ["from-a", "from-b"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_save_leaves_the_previous_cache_intact(tmp_path):
    tc, cfg = cache_file(tmp_path), FakeConfig(FakeTrt())
    tc.attach(cfg)
    cfg.cache.entries.add("kept")
    tc.save(cfg)
    before = tc.path.read_bytes()

    class Broken:
        def serialize(self):
            raise OSError("No space left on device")

    cfg.cache = Broken()
    with pytest.raises(OSError, match="No space left"):
        tc.save(cfg)
    assert tc.path.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# the build path against the stand-in ----------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_artifacts(tmp_path_factory):
    from scaleproof.stages import calibrate

    params = Params(run_dir=str(tmp_path_factory.mktemp("trt")), calib_samples=64, sensitivity=False,
                    precisions=["fp32", "fp16", "int8"])
    export.run(params)
    r = calibrate.run(params)
    cal = params.run_path / "calibrate"
    return trt_backend.BuildInputs(
        model_spec="zoo:digits-cnn", io=ModelIO.single((1, 8, 8)),
        onnx_by_precision={"fp32": str(params.run_path / "export" / "model.onnx"),
                           "fp16": str(cal / r["fp16"]["fp16_onnx"]), "int8": str(cal / r["int8_onnx"])},
        max_batch=32, threads=0)


@pytest.fixture
def fake_trt(monkeypatch):
    def install(version: str) -> FakeTrt:
        trt = FakeTrt(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        return trt
    return install


@pytest.mark.parametrize("version", ["10.13.0.35", "11.1.0"])
def test_strongly_typed_build_stores_engine_sidecar_and_fusion(tmp_path, digits_artifacts, fake_trt, version):
    trt = fake_trt(version)
    sidecar = trt_backend.build(digits_artifacts, "int8", tmp_path, "calibrate/model.int8.onnx",
                                TrtOptions(max_batch=32, opt_batch=8))
    sc = read_sidecar(sidecar)
    assert trt.parsed == [digits_artifacts.onnx_by_precision["int8"]]
    assert trt.network_flags == [1 << 5 if version.startswith("10") else 0]
    assert sc.extra["typing"].startswith("strongly typed: Q/DQ") and sc.extra["builder_flags"] == []
    assert sc.extra["profile"] == {"input": {"min": [1, 1, 8, 8], "opt": [8, 1, 8, 8], "max": [32, 1, 8, 8]}}
    assert sc.backend_version == version and sc.engine_file == "tensorrt-int8.engine"
    assert sc.extra["layers"]["engine_layers"] == 6 and sc.extra["layers"]["fused_layers"] == 2
    assert sc.extra["layers"]["foreign_nodes"] == 1 and sc.extra["layers"]["io_tensors"] == ["input", "logits"]
    assert sc.extra["device_memory_bytes"] == FakeEngine.ACTIVATION_BYTES  # 11.x too
    assert sc.extra["layers"]["onnx_nodes"] == len(onnx.load(digits_artifacts.onnx_by_precision["int8"]).graph.node)
    assert sc.extra["timing_cache"]["loaded"] == "new" and sc.extra["timing_cache"]["saved_bytes"] > 0
    cfg = trt.configs[-1]
    assert cfg.pool_limits == {"WORKSPACE": 4096 << 20} and cfg.profiling_verbosity.name == "DETAILED"
    # the engine file's hash is checked before anything is deserialized
    (sidecar.parent / sc.engine_file).write_bytes(b"tampered")
    with pytest.raises(EngineMismatchError, match="changed after it was built"):
        check_engine(sidecar, version)


def test_10x_falls_back_to_builder_flags_and_records_why(tmp_path, digits_artifacts, fake_trt):
    trt = fake_trt("10.13.0.35")
    trt.fail_strongly_typed = True
    sc = read_sidecar(trt_backend.build(digits_artifacts, "fp16", tmp_path, "", TrtOptions(max_batch=32)))
    assert sc.extra["typing"].startswith("weak typing (TensorRT 10.x fallback): FP32 ONNX with BuilderFlag FP16")
    assert "strongly typed Q/DQ pattern" in sc.extra["fallback_reason"] and sc.source == "export/model.onnx"
    assert trt.parsed == [digits_artifacts.onnx_by_precision["fp16"], digits_artifacts.onnx_by_precision["fp32"]]


def test_11x_has_no_fallback_and_says_why_the_build_failed(tmp_path, digits_artifacts, fake_trt):
    trt = fake_trt("11.1.0")
    trt.fail_strongly_typed = True
    with pytest.raises(ArtifactError, match="build of model.fp16.onnx failed .*strongly typed Q/DQ pattern"):
        trt_backend.build(digits_artifacts, "fp16", tmp_path, "", TrtOptions(max_batch=32))
    assert not list(tmp_path.rglob("*.engine"))


def test_parser_errors_stop_the_build_naming_nodes(tmp_path, digits_artifacts, fake_trt):
    trt = fake_trt("11.1.0")
    trt.parser_errors = [SimpleNamespace(node=lambda: 3, node_name=lambda: "node_Conv_56", node_operator=lambda: "Conv",
                                         desc=lambda: "unsupported pads")]
    with pytest.raises(ArtifactError, match=r"could not parse model.onnx: node 3 \(node_Conv_56, Conv\): unsupported"):
        trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32))


def test_second_build_reuses_the_timing_cache_of_this_gpu_and_version(tmp_path, digits_artifacts, fake_trt):
    fake_trt("10.13.0.35")
    trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32))
    sc = read_sidecar(trt_backend.build(digits_artifacts, "int8", tmp_path, "", TrtOptions(max_batch=32)))
    assert sc.extra["timing_cache"]["loaded"] == "hit"
    assert len(list(tmp_path.rglob("timing-*-trt10.13.0.35.cache"))) == 1


# sidecar compatibility ------------------------------------------------------------------------------

H100 = {"device_slug": "h100-80gb-hbm3", "device_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
A100 = {"device_slug": "a100-sxm4-80gb", "device_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
T4 = {"device_slug": "tesla-t4", "device_name": "Tesla T4", "compute_capability": "7.5"}
H200 = {"device_slug": "h200", "device_name": "NVIDIA H200", "compute_capability": "9.0"}


def stored_engine(tmp_path: Path, version: str = "10.8.0", **extra) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    built = tmp_path / "e.engine"
    built.write_bytes(b"engine bytes")
    sc = Sidecar(name="tensorrt-fp16", backend="tensorrt", backend_version=version, precision="fp16", **H100,
                 input_profile={}, source="calibrate/model.fp16.onnx", source_sha256="s" * 64,
                 engine_file="tensorrt-fp16.engine", extra=extra)
    return save_engine(tmp_path / "store", sc, built)


def test_engine_for_another_gpu_is_refused_unless_its_hardware_compat_level_covers_it(tmp_path):
    plain = stored_engine(tmp_path / "plain")
    with pytest.raises(EngineMismatchError, match="built for NVIDIA H100 80GB HBM3 .* this machine is NVIDIA A100"):
        check_engine(plain, "10.8.0", device=A100)
    ampere = stored_engine(tmp_path / "ampere", hardware_compat="ampere_plus")
    check_engine(ampere, "10.8.0", device=A100)
    with pytest.raises(EngineMismatchError, match="hardware compatibility level ampere_plus does not cover"):
        check_engine(ampere, "10.8.0", device=T4)
    same_cc = stored_engine(tmp_path / "same", hardware_compat="same_compute_capability")
    check_engine(same_cc, "10.8.0", device=H200)
    with pytest.raises(EngineMismatchError, match="does not cover"):
        check_engine(same_cc, "10.8.0", device=A100)


def test_version_compatible_engines_load_on_later_versions_of_the_same_major_only(tmp_path):
    vc = stored_engine(tmp_path / "vc", version="10.8.0", version_compatible=True)
    check_engine(vc, "10.9.0.1", device=H100)
    for installed in ("10.7.0", "11.0.0"):
        with pytest.raises(EngineMismatchError, match=f"built with tensorrt 10.8.0 but {installed} is installed"):
            check_engine(vc, installed, device=H100)
    plain = stored_engine(tmp_path / "plain", version="10.8.0")
    with pytest.raises(EngineMismatchError, match="rebuild it on this machine"):
        check_engine(plain, "10.9.0.1", device=H100)


# build-engine CLI and the stage's options -----------------------------------------------------------

def test_build_engine_refuses_bad_input_before_needing_tensorrt(tmp_path, digits_artifacts, capsys):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert cli.main(["build-engine", str(empty), "--precision", "fp32", "--gpu-store", str(tmp_path)]) == 2
    fp32 = digits_artifacts.onnx_by_precision["fp32"]
    assert cli.main(["build-engine", fp32, "--precision", "int8", "--gpu-store", str(tmp_path)]) == 2
    assert cli.main(["build-engine", fp32, "--precision", "fp16", "--gpu-store", str(tmp_path),
                     "--min-batch", "8", "--max-batch", "4"]) == 2
    err = capsys.readouterr().err
    assert "is empty (0 bytes)" in err and "no QuantizeLinear nodes" in err and "trt_min_batch (8)" in err


def test_build_engine_cli_builds_through_the_backend(tmp_path, digits_artifacts, fake_trt, capsys):
    fake_trt("11.1.0")
    fp32 = digits_artifacts.onnx_by_precision["fp32"]
    assert cli.main(["build-engine", fp32, "--precision", "fp16", "--gpu-store", str(tmp_path / "store"),
                     "--max-batch", "16", "--opt-level", "5"]) == 0
    out = capsys.readouterr().out
    assert "tensorrt-fp16.engine" in out and "strongly typed: FP16 ONNX" in out and "(2 fused)" in out
    sc = read_sidecar(next((tmp_path / "store").rglob("tensorrt-fp16.json")))
    assert sc.extra["opt_level"] == 5 and sc.input_profile["max_batch"] == 16


def test_fp32_model_asked_for_fp16_is_converted_to_an_fp16_model(tmp_path, digits_artifacts):
    inputs = trt_backend.inputs_for_onnx(Path(digits_artifacts.onnx_by_precision["fp32"]), "fp16", 8, tmp_path)
    half = onnx.load(inputs.onnx_by_precision["fp16"])
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)
    assert inputs.io.sample_shapes() == {"input": (1, 8, 8)} and inputs.io.outputs == ["logits"]


def test_stage_options_come_from_params():
    from scaleproof.backends.tensorrt import trt_options

    o = trt_options(Params(trt_opt_batch=0, batcher_max_batch=16, max_batch=64, trt_hardware_compat="ampere_plus"))
    assert (o.opt_batch, o.max_batch, o.hardware_compat) == (16, 64, "ampere_plus")
    assert trt_options(Params(trt_opt_batch=4)).opt_batch == 4


# issue 16: what a check against the real bindings found ----------------------------------------------

def test_the_stand_in_refuses_what_the_bindings_refuse():
    trt = FakeTrt("10.8.0")
    cfg = FakeConfig(trt)
    with pytest.raises(AttributeError):
        cfg.builder_optimisation_level = 3  # misspelt: pybind objects take no new attributes
    with pytest.raises(TypeError):
        cfg.hardware_compatibility_level = "AMPERE_PLUS"
    assert not hasattr(trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY")  # from 10.9
    assert hasattr(FakeTrt("10.9.0").HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY")
    assert not hasattr(FakeTrt("11.0.0").BuilderFlag, "FP16")
    with pytest.raises(RuntimeError, match="inconsistent"):
        trt.Builder(object()).create_optimization_profile().set_shape("input", (8, 3), (4, 3), (16, 3))


def test_version_compatible_build_deserializes_with_host_code_allowed(tmp_path, digits_artifacts, fake_trt):
    fake_trt("10.13.0.35")
    sc = read_sidecar(trt_backend.build(digits_artifacts, "fp32", tmp_path, "",
                                        TrtOptions(max_batch=32, version_compatible=True)))
    assert sc.extra["version_compatible"] and sc.extra["layers"]["engine_layers"] == 6


def test_same_compute_capability_needs_10_9(tmp_path, digits_artifacts, fake_trt):
    trt = fake_trt("10.8.0")
    with pytest.raises(ParamsError, match="same_compute_capability needs TensorRT 10.9"):
        trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32,
                                                                             hardware_compat="same_compute_capability"))
    assert trt.parsed == []
    trt = fake_trt("10.9.0")
    trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32,
                                                                         hardware_compat="same_compute_capability"))
    assert trt.configs[-1].hardware_compatibility_level.name == "SAME_COMPUTE_CAPABILITY"


def test_ampere_plus_is_refused_before_building_on_a_pre_ampere_gpu(tmp_path, digits_artifacts, fake_trt, monkeypatch):
    trt = fake_trt("10.13.0.35")
    trt.compute_capability = (7, 5)
    monkeypatch.setattr(trt_backend, "current_device", lambda: dict(T4))
    with pytest.raises(ParamsError, match="Ampere or newer .* this GPU is 7.5"):
        trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32, hardware_compat="ampere_plus"))
    assert trt.parsed == []


def fixed_batch_onnx(path: Path, batch: int) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["logits"])], "g", [x], [y]))
    onnx.save(model, path)
    return path


def test_a_fixed_batch_onnx_gets_a_matching_profile_or_a_reason(tmp_path, fake_trt):
    trt = fake_trt("10.13.0.35")
    onnx_path = fixed_batch_onnx(tmp_path / "fixed.onnx", 8)
    inputs = trt_backend.BuildInputs(model_spec="fixed", io=ModelIO.single((4,)), onnx_by_precision={"fp32": str(onnx_path)},
                                     max_batch=32, threads=0)
    with pytest.raises(ArtifactError, match="fixed batch dimension of 8 .* trt_min_batch = max_batch = 8"):
        trt_backend.build(inputs, "fp32", tmp_path / "store", "", TrtOptions(max_batch=32))
    assert trt.configs == []  # refused before building, not failed once per typing
    sc = read_sidecar(trt_backend.build(inputs, "fp32", tmp_path / "store", "", TrtOptions(min_batch=8, max_batch=8)))
    assert sc.extra["profile"]["input"] == {"min": [8, 4], "opt": [8, 4], "max": [8, 4]}


def test_one_logger_for_the_process_so_a_later_build_still_says_why_it_failed(tmp_path, digits_artifacts, fake_trt):
    trt = fake_trt("11.1.0")
    trt_backend.build(digits_artifacts, "fp32", tmp_path, "", TrtOptions(max_batch=32))
    trt.fail_strongly_typed = True
    with pytest.raises(ArtifactError, match="failed .*: no implementation for a strongly typed Q/DQ pattern"):
        trt_backend.build(digits_artifacts, "fp16", tmp_path, "", TrtOptions(max_batch=32))
    assert trt.logger is trt_backend._logger(trt)  # the one TensorRT kept
