"""Engines are tied to what built them: fault 4 (another GPU/version) and fault 5 (changed file)."""

import json
import os

import numpy as np
import pytest

from scaleproof import stages
from scaleproof.backends import onnxruntime as ort_backend
from scaleproof.engine_store import check_engine, read_sidecar
from scaleproof.errors import ArtifactError, EngineMismatchError
from scaleproof.provenance import atomic_write_bytes
from scaleproof.stages import build


def sidecar_of(run, name):
    built = stages.read_result(run.run_path, "03_build")
    entry = next(e for e in built["engines"] if e["name"] == name)
    return run.run_path / "build" / entry["sidecar"], entry


def test_engines_are_stored_per_device(digits_run):
    path, entry = sidecar_of(digits_run, "onnxruntime-int8")
    sc = read_sidecar(path)
    assert path.parent.name == sc.device_slug and sc.precision == "int8"
    assert sc.source == "calibrate/model.int8.onnx" and sc.input_profile["max_batch"] == 64
    engine = build.load_engine(digits_run.run_path, entry)
    assert engine.infer({"input": np.zeros((3, 1, 8, 8), np.float32)})[0].shape == (3, 10)


def test_engine_built_for_another_gpu_is_refused(digits_run, tmp_path):
    path, _ = sidecar_of(digits_run, "onnxruntime-fp32")
    raw = json.loads(path.read_text())
    raw.update(device_slug="h100-80gb-hbm3", device_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    other = tmp_path / path.name
    other.write_text(json.dumps(raw))
    (tmp_path / raw["engine_file"]).write_bytes((path.parent / raw["engine_file"]).read_bytes())
    with pytest.raises(EngineMismatchError, match="built for NVIDIA H100.*compute capability 9.0.*rebuild"):
        check_engine(other, ort_backend.version())


def test_engine_built_on_a_cpu_of_another_instruction_set_is_refused(digits_run, tmp_path):
    """The same CPU model name with another ISA level is another device type: its INT8 kernels differ."""
    from scaleproof import hardware

    path, _ = sidecar_of(digits_run, "onnxruntime-int8")
    raw = json.loads(path.read_text())
    here = hardware.cpu_info()["isa_level"]
    other_isa = "avx2" if here != "avx2" else "avx512-vnni"
    raw.update(device_slug=raw["device_slug"].removesuffix(here) + other_isa, compute_capability=None)
    assert raw["device_slug"] != hardware.device_slug()
    other = tmp_path / path.name
    other.write_text(json.dumps(raw))
    (tmp_path / raw["engine_file"]).write_bytes((path.parent / raw["engine_file"]).read_bytes())
    with pytest.raises(EngineMismatchError, match=f"-{other_isa}\\) but this machine is .*-{here}\\); rebuild"):
        check_engine(other, ort_backend.version())


def test_engine_from_another_version_or_source_is_refused(digits_run):
    path, entry = sidecar_of(digits_run, "onnxruntime-fp32")
    with pytest.raises(EngineMismatchError, match="built with onnxruntime"):
        check_engine(path, "0.0.1")
    with pytest.raises(EngineMismatchError, match="current source"):
        check_engine(path, ort_backend.version(), source_sha256="0" * 64)


def test_changed_engine_file_is_refused(digits_run, tmp_path):
    path, _ = sidecar_of(digits_run, "torch-fp32")
    copy = tmp_path / "store"
    copy.mkdir()
    for f in path.parent.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    engine_file = copy / read_sidecar(path).engine_file
    blob = bytearray(engine_file.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    engine_file.write_bytes(bytes(blob))
    with pytest.raises(EngineMismatchError, match="changed after it was built"):
        check_engine(copy / path.name, read_sidecar(path).backend_version)
    os.remove(engine_file)
    with pytest.raises(ArtifactError, match="missing"):
        check_engine(copy / path.name, read_sidecar(path).backend_version)


def test_unreadable_sidecar_is_refused(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        read_sidecar(tmp_path / "x.json")
    with pytest.raises(ArtifactError, match="missing"):
        read_sidecar(tmp_path / "y.json")


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"], "no temp file left behind"
