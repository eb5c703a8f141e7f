"""torch.compile's caches are kept per GPU type, torch version, model and mode: a second process compiling the
same thing into the same folder is served from the cache."""

import time
from pathlib import Path

import pytest

from scaleproof.backends import compile_cache
from scaleproof.isolate import call_isolated

RECIPE = {"model_spec": "zoo:resnet50", "weights_sha256": "ab" * 32, "precision": "fp16", "compile_mode": "default",
          "buckets": [1, 2, 4], "io": {}}


def test_the_folder_is_keyed_by_gpu_type_torch_version_mode_and_model(tmp_path):
    a = compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.11.0+cu128", RECIPE)
    assert a.parent == tmp_path / "nvidia-h100-80gb-hbm3" / "torch-2.11.0_cu128" and a.name.startswith("default-")
    assert a == compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.11.0+cu128", dict(RECIPE))
    others = [compile_cache.cache_dir(tmp_path, "nvidia-l4", "2.11.0+cu128", RECIPE),
              compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.12.0", RECIPE),
              compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.11.0+cu128",
                                      {**RECIPE, "compile_mode": "max-autotune"}),
              compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.11.0+cu128",
                                      {**RECIPE, "weights_sha256": "cd" * 32}),
              compile_cache.cache_dir(tmp_path, "nvidia-h100-80gb-hbm3", "2.11.0+cu128",
                                      {**RECIPE, "compile_freezing": True})]
    assert len({a, *others}) == 6
    assert compile_cache.cache_dir("", "x", "1", RECIPE).is_relative_to(compile_cache.default_root())


def test_outcome_counts_only_this_loads_graphs():
    assert compile_cache.outcome({"hits": 2, "misses": 1}, {"hits": 5, "misses": 1}) == "hit"
    assert compile_cache.outcome({"hits": 0, "misses": 0}, {"hits": 0, "misses": 3}) == "miss"
    assert compile_cache.outcome({"hits": 0, "misses": 0}, {"hits": 1, "misses": 1}) == "partial"


def compile_small_model(folder: str) -> dict:
    """In a fresh process: compile a small model with Inductor, its caches in `folder`."""
    import torch

    compile_cache.use(Path(folder))
    before = compile_cache.counts()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)).eval()
    fn = torch.compile(model)
    t0 = time.perf_counter()
    with torch.inference_mode():
        fn(torch.randn(8, 16))
    return {"outcome": compile_cache.outcome(before, compile_cache.counts()), "seconds": time.perf_counter() - t0}


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_graph_from_the_cache(tmp_path):
    first = call_isolated(compile_small_model, str(tmp_path), what="first compile")
    second = call_isolated(compile_small_model, str(tmp_path), what="second compile")
    assert first["outcome"] == "miss" and second["outcome"] == "hit", (first, second)
    assert any((tmp_path / "inductor").rglob("*")), "Inductor wrote nothing into the keyed folder"


def test_freezing_is_part_of_the_compiled_engines_recipe():
    """A frozen and an unfrozen compile of the same model make different code, so they get different caches."""
    from scaleproof.backends.torch import compile_recipe
    from scaleproof.engine_store import Sidecar

    def sidecar(**extra):
        return Sidecar(name="torch-fp16-compile", backend="torch", backend_version="2.11.0", precision="fp16",
                       device_slug="nvidia-h100-80gb-hbm3", device_name="H100", compute_capability="9.0",
                       input_profile={"max_batch": 8, "io": {}}, source="zoo:resnet50", source_sha256="ab" * 32,
                       engine_file="torch-fp16-compile.safetensors", extra={"mode": "compile", **extra})

    plain, frozen = compile_recipe(sidecar()), compile_recipe(sidecar(compile_freezing=True))
    assert "compile_freezing" not in plain and frozen["compile_freezing"] is True  # unfrozen caches keep their key
    assert compile_cache.cache_key(plain) != compile_cache.cache_key(frozen)
    # the capture order decides the batch the dynamic graph is compiled at; a cache made in another order is not read
    assert plain["capture_order"] == [1, 8, 4, 2]
