"""From a run to a Triton model repository: configs parsed by Triton's own ModelConfig protobuf, versions and
rollback, a tampered engine refused, Kubernetes objects valid against the Kubernetes API schema."""

import importlib.util
import json
import shutil
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest
import yaml
from google.protobuf import text_format

from scaleproof import cli, k8s_manifests, triton_repo
from scaleproof.errors import ArtifactError, ParamsError


def triton_model_config_pb2():
    """Triton's ModelConfig message, from the file tritonclient ships (its grpc package __init__ needs grpcio)."""
    root = Path(importlib.util.find_spec("tritonclient").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("model_config_pb2", root / "grpc" / "model_config_pb2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_config(path: Path):
    return text_format.Parse(path.read_text(), triton_model_config_pb2().ModelConfig())


@pytest.fixture
def repo(published, tmp_path):
    return tmp_path / "models", triton_repo.deploy(published, tmp_path / "models", log=lambda _: None)


def test_every_config_parses_with_tritons_schema_and_matches_the_run(published, repo):
    repo_dir, doc = repo
    pb2 = triton_model_config_pb2()
    bench = {e["engine"]: e for e in json.loads((published / "benchmark" / "benchmark.json").read_text())["engines"]}
    deployed = {d["engine"]: d for d in doc["deploys"]}
    assert set(deployed) == {"onnxruntime-fp32", "onnxruntime-int8", "torch-fp32"} and doc["skipped"] == []
    for engine, d in deployed.items():
        config = parse_config(repo_dir / d["model"] / "config.pbtxt")
        torch_engine = engine.startswith("torch")
        assert config.name == d["model"] and config.backend == ("pytorch" if torch_engine else "onnxruntime")
        # LibTorch binds positionally: INPUT__i / OUTPUT__i, mapped to the model's names in deploy.json
        assert [i.name for i in config.input] == (["INPUT__0"] if torch_engine else ["input"])
        assert [o.name for o in config.output] == (["OUTPUT__0"] if torch_engine else ["logits"])
        assert config.input[0].data_type == pb2.TYPE_FP32
        assert list(config.input[0].dims) == [1, 8, 8] and list(config.output[0].dims) == [10]
        batcher = bench[engine]["server"]["batcher"]
        assert config.dynamic_batching.max_queue_delay_microseconds == round(batcher["max_queue_delay_ms"] * 1000)
        assert max(config.dynamic_batching.preferred_batch_size) == batcher["max_batch"] <= config.max_batch_size
        assert list(config.version_policy.specific.versions) == [1]
        assert config.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_CPU
        assert (repo_dir / d["model"] / "1" / config.default_model_filename).is_file()
    assert triton_repo.verify_repo(repo_dir)[0] == []


def test_the_torchscript_program_answers_like_the_runs_engine(published, repo):
    import torch

    from scaleproof import stages
    from scaleproof.stages import build

    repo_dir, doc = repo
    [d] = [d for d in doc["deploys"] if d["engine"] == "torch-fp32"]
    assert d["torchscript"]["max_abs_diff"] == 0.0 and d["torchscript"]["checked_batch"] == 3
    x = triton_repo.example_inputs(published)["input"][:5]
    program = torch.jit.load(str(repo_dir / d["model"] / "1" / "model.pt"))
    entry = next(e for e in stages.read_result(published, "03_build")["engines"] if e["name"] == "torch-fp32")
    engine = build.load_engine(published, entry)
    with torch.no_grad():
        got = program(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got, engine.infer({"input": x})[0], rtol=1e-6, atol=1e-6)


def test_a_second_deploy_adds_version_2_and_rollback_pins_1_again(published, repo):
    repo_dir, _ = repo
    doc = triton_repo.deploy(published, repo_dir, log=lambda _: None)
    model = next(d["model"] for d in doc["deploys"] if d["engine"] == "onnxruntime-int8")
    assert triton_repo.versions_of(repo_dir / model) == [1, 2] and doc["pins"][model] == 2
    assert list(parse_config(repo_dir / model / "config.pbtxt").version_policy.specific.versions) == [2]
    assert triton_repo.rollback(repo_dir, model) == 1
    assert list(parse_config(repo_dir / model / "config.pbtxt").version_policy.specific.versions) == [1]
    assert triton_repo.verify_repo(repo_dir)[0] == []
    with pytest.raises(ParamsError, match="oldest deployed"):
        triton_repo.rollback(repo_dir, model)
    with pytest.raises(ParamsError, match=r"version 3 is not recorded .* recorded versions: \[1, 2\]"):
        triton_repo.rollback(repo_dir, model, to=3)
    assert cli.main(["rollback", str(repo_dir), model, "--to", "2"]) == 0
    assert triton_repo.read_deploys(repo_dir)["pins"][model] == 2


def test_a_tampered_engine_is_never_deployed(published, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(published, run)
    int8 = run / "calibrate" / "model.int8.onnx"
    int8.write_bytes(int8.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match=r"fails verify, nothing deployed: calibrate/model.int8.onnx"):
        triton_repo.deploy(run, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_verify_catches_a_changed_model_file_and_an_edited_pin(repo):
    repo_dir, doc = repo
    model = doc["deploys"][0]["model"]
    config = repo_dir / model / "config.pbtxt"
    config.write_text(config.read_text().replace("versions: [ 1 ]", "versions: [ 7 ]"))
    next(iter((repo_dir / model / "1").iterdir())).write_bytes(b"not a model")
    problems, _ = triton_repo.verify_repo(repo_dir)
    assert any(p.startswith(f"{model}/1/") and "changed since it was deployed" in p for p in problems)
    assert any(p.startswith(f"{model}/config.pbtxt: missing or changed") for p in problems)


def test_kubernetes_objects_are_valid_and_select_the_measured_gpu(published, tmp_path):
    version = kubernetes_validate.utils.latest_version()
    cpu = k8s_manifests.manifests(published, claim="triton-models")
    for obj in cpu:
        kubernetes_validate.validate(obj, version, strict=True)
    cost = json.loads((published / "cost_report" / "cost_report.json").read_text())
    assert cpu[0]["spec"]["replicas"] == min(cost["engines"], key=lambda e: e["annual_usd"])["instances"]
    assert "nodeSelector" not in cpu[0]["spec"]["template"]["spec"]  # a CPU run asks for no GPU
    run = tmp_path / "gpu-run"  # the same run as if measured on an H100: the GPU parts of the objects
    shutil.copytree(published, run)
    bench_file = run / "benchmark" / "benchmark.json"
    bench = json.loads(bench_file.read_text())
    bench["hardware"]["gpu"], bench["device_slug"] = {"name": "NVIDIA H100 80GB HBM3"}, "h100-80gb-hbm3"
    bench_file.write_text(json.dumps(bench))
    deployment, service = k8s_manifests.manifests(run, claim="triton-models")
    for obj in (deployment, service):
        kubernetes_validate.validate(obj, version, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    with pytest.raises(kubernetes_validate.ValidationError):  # the schema check is real
        kubernetes_validate.validate({**deployment, "spec": {**deployment["spec"], "replicas": "three"}}, version,
                                     strict=True)


def test_the_deploy_command_writes_repository_and_manifests_and_verify_accepts_them(published, tmp_path, capsys):
    repo_dir = tmp_path / "models"
    assert cli.main(["deploy", str(published), "--repo", str(repo_dir)]) == 0
    out = capsys.readouterr().out
    assert "not deployed" not in out and f"scaleproof verify {repo_dir}" in out
    objs = list(yaml.safe_load_all(next((repo_dir / "k8s").glob("*.yaml")).read_text()))
    assert [o["kind"] for o in objs] == ["Deployment", "Service"]
    # the repository also holds deploy.json, k8s/ ...: Triton loads exactly this run's models, by name
    args = objs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    pins = triton_repo.read_deploys(repo_dir)["pins"]
    assert "--model-control-mode=explicit" in args and sorted(a.split("=", 1)[1] for a in args
                                                              if a.startswith("--load-model=")) == sorted(pins)
    assert cli.main(["verify", str(repo_dir)]) == 0


def test_the_08_deploy_notebook_deploys_a_published_run_and_keeps_its_record(published, tmp_path):
    from scaleproof.pipeline import deploy_notebook

    repo_dir = tmp_path / "models"
    executed = deploy_notebook(published, repo_dir)
    assert executed == repo_dir / "notebooks" / f"08_deploy-{published.name}.ipynb"
    nb = json.loads(executed.read_text())
    text = "".join(str(o.get("data", o.get("text", ""))) for c in nb["cells"] for o in c.get("outputs", []))
    assert "INPUT__0" in text and "nvidia.com/gpu" not in text.split("kind: Service")[-1]  # configs and objects shown
    assert "onnxruntime-int8" in text and "Every validated, priced engine of the run was deployed" in text
    assert executed.with_suffix(".html").is_file() and triton_repo.verify_repo(repo_dir)[0] == []
    # a second deploy through the notebook adds version 2 and keeps both records
    deploy_notebook(published, repo_dir)
    assert triton_repo.read_deploys(repo_dir)["pins"] == {d: 2 for d in triton_repo.read_deploys(repo_dir)["pins"]}


def test_deploy_repo_is_resolved_against_the_working_directory(tmp_path):
    from scaleproof.config import Params

    params = Params(deploy_repo="models").with_absolute_paths(tmp_path)
    assert params.deploy_repo == str(tmp_path / "models")
