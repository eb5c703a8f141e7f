"""A user's own model through the chain: several inputs of several dtypes (int64 token ids, an attention
mask, a dynamic sequence axis), their weights and data files, outputs picked from ModelOutputs, the
metric and gate chosen per model, INT8 scopes, and native crashes contained. Real architectures from
transformers, built from small configs (no downloads)."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from scaleproof import stages, triton_repo
from scaleproof.config import Params
from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.examples.sentence_encoder import make_files, token_batches
from scaleproof.pipeline import run_chain
from scaleproof.stages import build, calibrate, export, validate
from scaleproof.zoo import load_model

TOKENS = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [3, 1000]},
          {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "seq"], "range": [1, 2]}]
FAST = dict(calib_samples=48, val_samples=64, batch_sizes=[1, 8], max_batch=8, batcher_max_batch=8, min_time_s=0.05,
            max_cov=0.5, warmup=2, min_repeats=5, sensitivity=False, peak_repeats=1, min_priced_duration_s=0.5,
            remeasure_flagged=False)


@pytest.fixture(scope="module")
def encoder_files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("encoder"), n_calib=96, n_val=96, small=True)


def encoder_params(run_dir, files, **kw) -> Params:
    values = dict(run_dir=str(run_dir), model="scaleproof.examples.sentence_encoder:build_small", inputs=TOKENS,
                  dims={"seq": 64}, weights=str(files["weights"]), calib_data=str(files["calib"]),
                  val_data=str(files["val"]), **FAST)
    return Params.parse({**values, **kw})


@pytest.mark.slow
def test_encoder_with_two_int64_inputs_goes_through_the_whole_chain(tmp_path, encoder_files):
    params = encoder_params(tmp_path / "dev", encoder_files, loadgen_min_duration_s=0.2, loadgen_min_queries=50,
                            peak_tolerance=0.3, peak_repeats=1, static_search=False, peak_search_runs=2,
                            confirm_steps=1)  # what is checked is the two int64 inputs through every stage:
    # the shortest benchmark does
    outcome = run_chain(params, run_id="encoder", outputs=tmp_path / "runs", progress=False)
    assert outcome.ok, outcome.error
    run = outcome.run_dir
    exported = stages.read_result(run, "01_export")
    assert exported["onnx_input_dims"] == {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"]}
    assert exported["output_names"] == ["output"] and exported["parity"]["max_rel_err"] < 1e-4
    sess = ort.InferenceSession(str(run / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    short = token_batches(3, 1000, seq=24, seed=5)  # another batch and sequence length than exported with
    assert sess.run(None, short)[0].shape == (3, 32)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["val"]["source"]["kind"] == "npz" and len(manifest["data"]["calib"]["sha256"]) == 64
    assert manifest["data"]["weights_sha256"] == encoder_files["weights"].with_suffix(".safetensors.sha256") \
        .read_text().split()[0]
    validated = stages.read_result(run, "04_validate")
    assert validated["metric"] == "cosine" and validated["gate"]["min_cosine"] == 0.99
    assert set(validated["passed"]) == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    int8 = next(e for e in validated["engines"] if e["engine"] == "onnxruntime-int8")
    assert int8["cosine_mean"] >= 0.99 and int8["output_err"] <= 0.25
    bench = stages.read_result(run, "05_benchmark")
    assert {e["engine"] for e in bench["engines"]} == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    report = (run / "report.html").read_text()
    assert "cosine similarity of each sample" in report and "mean cosine to FP32" in report
    # for Triton's PyTorch backend: the engine as TorchScript with two INT64 inputs, answering like the ONNX model
    # (what deploy writes for it; called directly, since deploy takes only engines the run could price)
    from scaleproof.backends import torch as torch_backend

    entry = next(e for e in stages.read_result(run, "03_build")["engines"] if e["name"] == "torch-fp32")
    traced = torch_backend.torchscript(run / "build" / entry["sidecar"], entry["source_sha256"],
                                       triton_repo.example_inputs(run), tmp_path / "model.pt")
    assert traced["inputs"] == ["input_ids", "attention_mask"] and traced["max_abs_diff"] < 1e-5
    signature = triton_repo.onnx_signature(run / "export" / "model.onnx")
    assert [(s["data_type"], s["dims"]) for s in signature["inputs"]] == [("TYPE_INT64", [-1, -1])] * 2
    program = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        got = program(*(torch.from_numpy(short[k]) for k in ("input_ids", "attention_mask")))[0].numpy()
    np.testing.assert_allclose(got, sess.run(None, short)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("factory, extra", [
    ("hf_vit", dict(input_shape=[3, 32, 32])),  # ModelOutput with `logits`; one float input
    ("hf_resnet", dict(input_shape=[3, 32, 32], metric="top1", max_top1_drop=100.0)),  # labels from the .npz
    ("hf_mobilenet", dict(inputs=[{"name": "pixel_values", "shape": ["batch", 3, 32, 32]}], outputs=["logits"])),
])
def test_transformers_vision_families_through_the_chain_with_npz_data(tmp_path, factory, extra):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    name = "pixel_values" if "inputs" in extra else "input"
    labels = {"labels": rng.integers(0, 5, 64)} if extra.get("metric") == "top1" else {}
    np.savez(tmp_path / "data.npz", **{name: x}, **labels)
    params = Params.parse(dict(run_dir=str(tmp_path / "run"), model=f"tests.user_models:{factory}",
                               calib_data=str(tmp_path / "data.npz"), val_data=str(tmp_path / "data.npz"),
                               **{**FAST, "calib_samples": 32}, **extra))
    exported = export.run(params)
    assert exported["output_names"] == ["logits"] and exported["parity"]["max_rel_err"] < 1e-4
    assert exported["data"]["calib"]["samples"] + exported["data"]["val"]["samples"] == 64  # one file, split in two
    calibrated = calibrate.run(params)
    assert calibrated["qdq"]["int8_nodes"] > 0
    build.run(params)
    validated = validate.run(params)
    expected = {"hf_vit": "agreement", "hf_resnet": "top1", "hf_mobilenet": "cosine"}[factory]
    assert validated["metric"] == expected and validated["judged_output"] == "logits"
    rows = {r["engine"]: r for r in validated["engines"]}
    assert set(rows) == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    assert rows["onnxruntime-fp32"]["output_err"] < 1e-4
    if expected == "top1":  # random labels on a random model: the gate says they cannot judge it
        assert all("at chance (1/5)" in r["reason"] and not r["passed"] for r in rows.values())
    else:
        assert rows["onnxruntime-fp32"]["passed"]
    if factory == "hf_vit":  # one family on to LoadGen and the cost report, with the shortest runs
        from scaleproof.stages import benchmark as stage
        from scaleproof.stages import cost_report

        short = params.with_(loadgen_min_duration_s=0.1, loadgen_min_queries=20, peak_search_runs=2)
        bench = stage.run(short)
        assert {e["engine"] for e in bench["engines"]} == set(validated["passed"]) | {"torch-fp32"}
        assert all(e["offline"]["qps"] > 0 for e in bench["engines"])
        priced = cost_report.run(short)
        assert {e["engine"] for e in priced["engines"]} | {x["engine"] for x in priced["excluded"]} == \
            {e["engine"] for e in bench["engines"]}


def test_collapsed_int8_encoder_is_refused_by_the_cosine_gate(tmp_path, encoder_files):
    params = encoder_params(tmp_path, encoder_files, model="tests.user_models:outlier_encoder", weights="",
                            mixed_precision=False, outputs=["embedding"])
    exported = export.run(params)
    assert exported["output_names"] == ["embedding"]
    calibrated = calibrate.run(params)
    assert not calibrated["int8_passed"] and calibrated["int8"]["cosine_mean"] < 0.9
    assert "outside the gate" in calibrated["statement"]
    build.run(params)
    rows = {r["engine"]: r for r in validate.run(params)["engines"]}
    assert not rows["onnxruntime-int8"]["passed"] and "min_cosine 0.99" in rows["onnxruntime-int8"]["reason"]
    assert rows["onnxruntime-fp32"]["passed"]


def test_quant_scope_auto_recovers_a_collapsed_encoder_and_records_every_attempt(tmp_path, encoder_files):
    params = encoder_params(tmp_path, encoder_files, model="tests.user_models:outlier_encoder", weights="",
                            quant_scope="auto", sensitivity_groups=8)
    export.run(params)
    r = calibrate.run(params)
    first = r["quant_attempts"][0]
    assert first["scope"] == "all" and r["quant_scope"] == "all"  # every op first; it passed with mixed precision
    assert r["int8_passed"] and r["int8"]["cosine_mean"] >= 0.99 and r["int8_all_nodes"]["cosine_mean"] < 0.9
    assert r["mixed_precision"]["passed"] and r["kept_fp32"], "the outlier's group stays FP32"
    # ~100 quantized nodes judged in at most 8 groups (contiguous in graph order), each node in one group
    groups = r["sensitivity"]
    assert r["sensitivity_groups"] == len(groups) <= 8 and all(g["judged"] for g in groups)
    assert sum(len(g["nodes"]) for g in groups) == first["quantized_nodes"] > 50
    assert set(r["kept_fp32"]) == {n for g in groups[: r["mixed_precision"]["steps"][-1]["groups_kept_fp32"]]
                                   for n in g["nodes"]}


def test_dynamic_int8_scope_is_recorded_and_passes_the_cosine_gate(tmp_path, encoder_files):
    params = encoder_params(tmp_path, encoder_files, quant_scope="dynamic")
    export.run(params)
    r = calibrate.run(params)
    assert r["quant_scope"] == "dynamic" and r["format"].startswith("dynamic INT8")
    assert r["qdq"]["dynamic_quantize_nodes"] > 0 and r["qdq"]["quantize_nodes"] == 0 and r["qdq"]["int8_nodes"] > 0
    assert r["int8_passed"] and r["calib_cache"]["status"] == "unused"


def test_wrong_user_data_stops_before_any_work_naming_the_input(tmp_path, encoder_files):
    bad = dict(np.load(encoder_files["val"]))
    bad["attention_mask"] = bad["attention_mask"].astype(np.int32)
    np.savez(tmp_path / "bad.npz", **bad)
    params = encoder_params(tmp_path / "run", encoder_files, val_data=str(tmp_path / "bad.npz"))
    with pytest.raises(ParamsError, match=r"input 'attention_mask' has dtype int32; expected attention_mask: "
                                          r"\(N, 64\) int64"):
        export.run(params)
    assert not (tmp_path / "run" / "export").exists()


def test_user_weights_are_loaded_checked_and_untrusted_pickles_refused(tmp_path, encoder_files):
    spec = "scaleproof.examples.sentence_encoder:build_small"
    loaded = load_model(spec, inputs=TOKENS, dims={"seq": 64}, weights=str(encoder_files["weights"]))
    assert "sha256" in loaded.weights and len(loaded.weights_sha256) == 64
    default = load_model(spec, inputs=TOKENS, dims={"seq": 64})
    w = "model.bert.embeddings.word_embeddings.weight"
    assert not torch.equal(loaded.module.state_dict()[w], default.module.state_dict()[w])

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ArtifactError, match="weights-only"):
        load_model(spec, inputs=TOKENS, dims={"seq": 64}, weights=str(tmp_path / "evil.pt"))
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ArtifactError, match="do not fit the model: missing"):
        load_model(spec, inputs=TOKENS, dims={"seq": 64}, weights=str(tmp_path / "wrong.pt"))


def test_outputs_are_picked_by_name_from_model_outputs():
    bundle = load_model("tests.user_models:hf_vit", [3, 32, 32])
    assert bundle.io.outputs == ["logits"]
    with pytest.raises(ParamsError, match=r"output\(s\) \['pooled'\] not found; it returns \['logits'\]"):
        load_model("tests.user_models:hf_vit", [3, 32, 32], outputs=["pooled"]).module(torch.zeros(1, 3, 32, 32))


def test_random_mobilenet_at_default_init_is_reported_as_a_degenerate_reference(tmp_path):
    params = Params(run_dir=str(tmp_path), model="tests.user_models:hf_mobilenet_default_init", input_shape=[3, 32, 32],
                    **FAST)
    assert "near-zero outputs" in export.run(params)["reference_degenerate"]["logits"]
    r = calibrate.run(params)  # nothing can pass against it: no sensitivity pass or fallback is spent on it
    assert "near-zero" in r["reference_degenerate"] and not r["int8_passed"] and r["sensitivity"] == []
    assert [a["scope"] for a in r["quant_attempts"]] == ["all"]


def test_tiny_outputs_are_reported_as_a_degenerate_reference(tmp_path):
    params = Params(run_dir=str(tmp_path), model="tests.user_models:tiny_logits", input_shape=[3, 16, 16], **FAST)
    exported = export.run(params)
    assert "near-zero outputs" in exported["reference_degenerate"]["logits"]
    calibrate.run(params)
    build.run(params)
    validated = validate.run(params)
    assert "near-zero" in validated["reference_degenerate"] and not validated["passed"]
    assert all("cannot judge accuracy" in r["reason"] for r in validated["engines"])


def test_a_native_crash_in_one_engine_is_contained_and_named(tmp_path):
    params = Params(run_dir=str(tmp_path), model="tests.crashing_models:segfaults_in_child", input_shape=[3, 16, 16],
                    **FAST)
    export.run(params)
    calibrate.run(params)
    build.run(params)
    rows = {r["engine"]: r for r in validate.run(params)["engines"]}
    assert not rows["torch-fp32"]["passed"] and rows["torch-fp32"]["crashed"]
    assert "SIGSEGV" in rows["torch-fp32"]["reason"] and "torch" in rows["torch-fp32"]["reason"]
    assert rows["onnxruntime-fp32"]["passed"] and rows["onnxruntime-int8"]["passed"]


def test_torchvision_that_cannot_be_imported_names_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def broken(name, *a, **k):
        if name.startswith("torchvision"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", broken)
    modules = __import__("sys").modules
    for name in [m for m in modules if m.split(".")[0] == "torchvision"]:  # an installed one may be imported
        monkeypatch.delitem(modules, name)
    for spec in ("zoo:resnet50", "torchvision.models:vit_b_16"):
        with pytest.raises(ParamsError, match=r"torchvision cannot be imported beside torch .*scaleproof\[vision\]"):
            load_model(spec, [3, 224, 224])


def test_quant_scope_auto_keeps_the_fastest_scope_inside_the_gate(tmp_path, encoder_files):
    params = encoder_params(tmp_path, encoder_files, quant_scope="auto")
    export.run(params)
    r = calibrate.run(params)
    attempts = {a["scope"]: a for a in r["quant_attempts"]}
    assert list(attempts) == ["all", "matmul", "dynamic"]  # a CPU machine: dynamic INT8 is a candidate
    passing = {s: a["int8_cpu"]["geomean_samples_per_s"] for s, a in attempts.items() if a["result"]["passed"]}
    assert passing and r["quant_scope"] == max(passing, key=passing.get) and r["int8_passed"]
    assert r["quant_choice"].startswith(f"the fastest of {len(passing)} scope(s) inside the gate")
    # timed as the benchmark times engines: its batch sizes, every one of them
    assert "the benchmark's batch sizes [1, 8]" in r["quant_choice"]
    assert [b["batch"] for b in r["speed_cpu"]["int8"]["per_batch"]] == params.batch_sizes
    assert r["speed_cpu"]["int8"] == attempts[r["quant_scope"]]["int8_cpu"]
