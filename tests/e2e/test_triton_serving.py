"""A deployed ONNX Runtime model answered by a real Triton server on this CPU, measured with LoadGen over gRPC."""

from __future__ import annotations

import json

import pytest

from scaleproof import served, triton_repo
from scaleproof.errors import ArtifactError, ParamsError

pytestmark = pytest.mark.slow


def serving_environment_or_skip():
    try:
        served.serve_python()
    except ParamsError as e:
        pytest.skip(f"the Triton server cannot start here: {e}")


@pytest.fixture(scope="module")
def repo(published, tmp_path_factory):
    repo = tmp_path_factory.mktemp("served") / "repo"
    triton_repo.deploy(published, repo, log=lambda _: None)
    return repo


def test_triton_answers_like_the_run_and_its_server_peak_sits_beside_the_in_process_one(published, repo):
    serving_environment_or_skip()
    model = next(d["model"] for d in triton_repo.read_deploys(repo)["deploys"] if d["engine"] == "onnxruntime-fp32")
    try:
        [row] = served.serve_bench(published, repo, model, log=lambda _: None)
    except ArtifactError as e:
        if "before it was ready" in str(e) or "was not ready" in str(e):
            pytest.skip(f"the Triton server cannot start here: {e}")
        raise
    # the same ONNX file behind Triton answers every validation sample as the run's engine does
    assert row["outputs"]["samples"] > 100 and row["outputs"]["argmax_agreement"] == 1.0
    assert row["outputs"]["allclose_1e-5"], row["outputs"]
    # both sides measured with the same method and settings: repeated searches, then a confirmation run
    for side in ("in_process", "served"):
        server = row[side]["server"]
        searches = [server["dynamic"], *server["dynamic_repeats"]]
        assert server["batcher"]["max_batch"] == row["batcher"]["max_batch"]
        # a second search when the first found a peak; confirmed at the lower peak when both did (the smoke
        # profile's 3-run searches may find none on a loaded machine: then the capacity says why)
        assert len(searches) == (2 if server["dynamic"]["peak_qps"] is not None else 1)
        assert (server["confirmation"] is not None) == (len(searches) == 2 and all(s["peak_qps"] for s in searches))
        runs = [r for s in searches for r in s["runs"]] + (server["confirmation"] or {}).get("tries", [])
        assert runs and all(r["scenario"] == "server" and r["target_qps"] > 0 for r in runs)
        assert all((repo / "served" / model / r["log_dir"] / "mlperf_log_detail.txt").is_file() for r in runs)
        assert row["capacity"][side][0] is not None or row["capacity"][side][1]  # a figure, or why there is none
    assert any(r["valid"] for r in row["in_process"]["server"]["dynamic"]["runs"])
    # the served runs went through Triton: one request per query, batched by Triton (the batch sizes are its
    # statistics', every request sent counted in them), and the server saw them (its log names the model)
    served_runs = row["served"]["server"]["dynamic"]["runs"]
    assert all(sum(int(b) * n for b, n in r["batch_sizes"].items()) == r["extra"]["requests_sent"] > 0
               for r in served_runs)
    log = (repo / "served" / model / "triton_server.log").read_text()
    assert f"successfully loaded '{model}'" in log
    written = json.loads((repo / "served" / f"{model}.json").read_text())
    assert written["capacity"]["served"][1] and written["served_by"].startswith("Triton Inference Server")
    assert written["served"]["offline"]["qps"] > 0 and written["in_process"]["offline"]["qps"] > 0


def test_a_repository_that_fails_verify_is_not_served(published, repo, tmp_path):
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    config = next(copy.glob("*/config.pbtxt"))
    config.write_text(config.read_text().replace("max_queue_delay_microseconds", "max_queue_delay_microseconds: 1 #"))
    with pytest.raises(ArtifactError, match="fails verify, nothing served"):
        served.serve_bench(published, copy)


def test_a_run_not_deployed_there_is_named(published, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match="deploy it first"):
        served.serve_bench(published, tmp_path / "empty")
