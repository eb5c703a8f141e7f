"""A DLRM-style recommender (26 EmbeddingBag tables, dense features, a sigmoid click probability) trained on a
planted click log, through the whole chain from a profile written as users write it: exported without per-bag
loops, its tables in INT8 with per-row scales, judged by AUC against the labels with an AUC-drop gate."""

import json
from collections import Counter

import onnx
import pytest
import yaml

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.examples.dlrm import TABLES, inputs, make_files
from scaleproof.pipeline import run_chain


@pytest.fixture(scope="module")
def click_files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("dlrm"), size="small", n_train=6000, n_calib=128, n_val=1024, epochs=2)


@pytest.mark.slow
def test_a_dlrm_goes_through_the_chain_with_the_auc_gate(tmp_path, click_files):
    assert click_files["val_auc"] > 0.65  # a trained model: the AUC gate judges something real
    profile = {"model": "scaleproof.examples.dlrm:build_small", "inputs": inputs("small"), "outputs": ["ctr"],
               "weights": str(click_files["weights"]), "calib_data": str(click_files["calib"]),
               "val_data": str(click_files["val"]), "quant_scope": "auto", "max_auc_drop": 0.5,
               "calib_samples": 128, "sensitivity": False, "batch_sizes": [1, 8], "max_batch": 8,
               "batcher_max_batch": 8, "min_time_s": 0.05, "max_cov": 0.5, "warmup": 2, "min_repeats": 5,
               "peak_repeats": 1, "min_priced_duration_s": 0.5, "remeasure_flagged": False,
               "loadgen_min_duration_s": 0.2, "loadgen_min_queries": 50, "peak_tolerance": 0.3,
               "static_search": False, "peak_search_runs": 2, "confirm_steps": 1}
    text = yaml.safe_dump(profile, sort_keys=False) + "daily_requests: 1.0e9\n"  # YAML 1.1 reads that as a string
    (tmp_path / "dlrm.yaml").write_text(text)
    params = Params.from_yaml(tmp_path / "dlrm.yaml").with_(run_dir=str(tmp_path / "dev"))
    outcome = run_chain(params, run_id="dlrm", outputs=tmp_path / "runs", progress=False)
    assert outcome.ok, outcome.error
    run = outcome.run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["params"]["daily_requests"] == 1e9

    exported = stages.read_result(run, "01_export")
    ops = Counter(n.op_type for n in onnx.load(str(run / "export" / "model.onnx")).graph.node)
    assert "Loop" not in ops and len(exported["embedding_bags_swapped"]) == TABLES
    assert exported["parity"]["max_rel_err"] < 1e-4 and exported["data"]["val"]["rows_also_in_calib"] == 0

    calibrated = stages.read_result(run, "02_calibrate")
    tables = calibrated["embedding_tables"]
    assert tables["tables"] == TABLES and tables["int8"].startswith("INT8 weight-only, one symmetric scale per row")
    assert tables["int8_bytes"] < 0.35 * tables["fp32_bytes"]
    assert calibrated["metric"] == "auc" and calibrated["gate"]["max_auc_drop_pts"] == 0.5
    # the scopes were timed at the benchmark's batch sizes, as the benchmark times engines
    assert [b["batch"] for b in calibrated["speed_cpu"]["int8"]["per_batch"]] == profile["batch_sizes"]
    assert calibrated["fp16"] is None and not list(run.rglob("*.fp16.onnx"))  # no FP16 engine asked for
    int8_model = onnx.load(str(run / "calibrate" / calibrated["int8_onnx"]))
    rows = {i.name: i for i in int8_model.graph.initializer}
    assert all(rows[f"model.tables.{t}.weight_rows_int8"].data_type == onnx.TensorProto.INT8 for t in range(TABLES))
    assert not any(name.startswith("model.tables.") and i.data_type == onnx.TensorProto.FLOAT
                   and len(i.dims) == 2 and i.dims[1] != 1 for name, i in rows.items())  # no FP32 table left

    validated = stages.read_result(run, "04_validate")
    assert validated["metric"] == "auc"
    int8 = next(e for e in validated["engines"] if e["engine"] == "onnxruntime-int8")
    fp32 = next(e for e in validated["engines"] if e["engine"] == "onnxruntime-fp32")
    assert fp32["auc"] == pytest.approx(int8["auc"] - int8["auc_delta_pts"] / 100, abs=1e-6)
    assert int8["passed"] == (-int8["auc_delta_pts"] <= 0.5)  # kept, or refused with the drop in the reason
    assert int8["passed"] or f"AUC drops {-int8['auc_delta_pts']:.3f} pt" in int8["reason"]

    bench = stages.read_result(run, "05_benchmark")
    assert {e["engine"] for e in bench["engines"]} == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    report = (run / "report.html").read_text()
    assert "ROC AUC (and log loss)" in report and "embedding table(s)" in report
