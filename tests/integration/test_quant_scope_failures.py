"""A scope whose INT8 model fails the ONNX checker is a failed attempt: `auto` records why, keeps the model for
inspection and goes on to the next scope; where no scope is left, the error names the kept file."""

import onnx
import pytest

from scaleproof.config import Params, QuantScope
from scaleproof.errors import ArtifactError
from scaleproof.quantization.quantizers import OrtQuantizer
from scaleproof.stages import calibrate, export

FAST = dict(calib_samples=64, val_samples=120, sensitivity=False, batch_sizes=[1, 8], max_batch=8,
            batcher_max_batch=8, min_time_s=0.05, max_cov=0.5, warmup=2, min_repeats=5)


@pytest.fixture
def unsorted_all_scope(monkeypatch):
    """ONNX Runtime's quantizer as it behaves on the graphs the issue reports: the `all` scope's model comes out with
    its nodes out of topological order (what the ONNX checker refuses); the other scopes are untouched."""
    real = OrtQuantizer._quantize_static

    def quantize(self, dst, *a, **k):
        real(self, dst, *a, **k)
        if self.scope is QuantScope.all:
            model = onnx.load(str(dst))
            nodes = list(model.graph.node)[::-1]
            del model.graph.node[:]
            model.graph.node.extend(nodes)
            onnx.save(model, str(dst))

    monkeypatch.setattr(OrtQuantizer, "_quantize_static", quantize)


def test_auto_goes_on_past_a_scope_whose_model_fails_the_checker(tmp_path, unsorted_all_scope):
    params = Params(run_dir=str(tmp_path), quant_scope="auto", **FAST)
    export.run(params)
    r = calibrate.run(params)
    attempts = {a["scope"]: a for a in r["quant_attempts"]}
    assert list(attempts) == ["all", "matmul", "dynamic"]
    failed = attempts["all"]
    assert failed["failed"] and not failed["result"]["passed"] and failed["int8_cpu"] is None
    assert "INT8 all failed: ArtifactError" in failed["result"]["reason"]
    assert "topologically sorted" in failed["result"]["reason"]
    assert "kept as calibrate/rejected/int8-all.onnx in the run folder" in failed["result"]["reason"]
    assert (tmp_path / "calibrate" / "rejected" / "int8-all.onnx").is_file()
    assert str(tmp_path) not in failed["result"]["reason"]  # no path of the scratch folder, which is removed
    assert r["quant_scope"] in ("matmul", "dynamic") and r["int8_passed"]
    assert r["quant_choice"].startswith("the fastest of 2 scope(s) inside the gate")
    assert not (tmp_path / "calibrate" / ".work").exists()


def test_with_no_scope_left_the_error_names_the_kept_model(tmp_path, unsorted_all_scope):
    params = Params(run_dir=str(tmp_path), quant_scope="all", **FAST)
    export.run(params)
    with pytest.raises(ArtifactError, match=r"no INT8 model could be made: INT8 all failed: .*topologically sorted.* "
                                            r"kept as calibrate/rejected/int8-all.onnx in the run folder"):
        calibrate.run(params)
    assert (tmp_path / "calibrate" / "rejected" / "int8-all.onnx").is_file()
