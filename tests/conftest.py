import importlib.util
import os
import sys

import pytest

from tests import ROOT

if str(ROOT) not in sys.path:  # `tests.user_models:...` must import in the tests and in papermill kernels
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Skip by capability, not by guess: gpu tests need CUDA, tensorrt tests need TensorRT too."""
    cuda = _has_cuda()
    trt = cuda and importlib.util.find_spec("tensorrt") is not None
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "tensorrt" in item.keywords and not trt:
            item.add_marker(pytest.mark.skip(reason="needs TensorRT and a CUDA GPU (import tensorrt failed)"))


def pytest_configure(config):
    from tests import parallel  # make test's two xdist workers

    config.pluginmanager.register(parallel, "scaleproof-parallel")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """Export + calibrate + build + validate of the digits model, once per session, through lib."""
    from scaleproof.config import Params
    from scaleproof.stages import build, calibrate, export, validate

    params = Params(run_dir=str(tmp_path_factory.mktemp("digits")), calib_samples=128,
                    calib_compare=["minmax", "entropy", "percentile"])
    export.run(params)
    calibrate.run(params)
    build.run(params)
    validate.run(params)
    return params


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """One published run of the smoke profile through the runner (papermill), shared by the slow tests."""
    from scaleproof.config import Params
    from scaleproof.pipeline import run_chain

    outcome = run_chain(Params.from_yaml(ROOT / "params" / "smoke.yaml"), run_id="published",
                        outputs=tmp_path_factory.mktemp("runs"), progress=False)
    assert outcome.ok, outcome.error
    return outcome.run_dir

