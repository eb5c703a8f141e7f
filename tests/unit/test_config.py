import pytest

from scaleproof.config import CalibMethod, Params, Precision, describe, parse_override
from scaleproof.errors import ParamsError
from tests import ROOT


def test_defaults_are_a_valid_small_cpu_run():
    p = Params()
    assert p.model == "zoo:digits-cnn"
    assert p.precisions == [Precision.fp32, Precision.int8]
    assert max(p.batch_sizes) <= p.max_batch


@pytest.mark.parametrize("values, named", [
    ({"batchsize": 8}, "batchsize: unknown parameter"),
    ({"opset": "18"}, "opset: Input should be a valid integer"),
    ({"per_channel": "yes"}, "per_channel: Input should be a valid boolean"),
    ({"calib_method": "kl"}, "calib_method: Input should be 'minmax', 'entropy' or 'percentile'"),
    ({"precisions": ["int4"]}, "precisions.0"),
    ({"target_utilization": 1.5}, "target_utilization"),
    ({"batch_sizes": [1, 128]}, "batch_sizes go up to 128 but max_batch is 64"),
    ({"model": "resnet"}, "neither zoo:NAME nor package.module:factory"),
])
def test_bad_parameters_are_named(values, named):
    with pytest.raises(ParamsError, match=None) as e:
        Params.parse(values)
    assert named in str(e.value)


def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(ParamsError) as e:
        Params.parse({"opset": "x", "seeed": 1})
    assert "opset" in str(e.value) and "seeed" in str(e.value)


def test_enums_accept_their_string_values():
    p = Params.parse({"calib_method": "entropy", "precisions": ["fp32", "fp16"]})
    assert p.calib_method is CalibMethod.entropy and p.precisions[1] is Precision.fp16
    assert p.values()["calib_method"] == "entropy"


def test_yaml_profile_and_overrides(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("calib_samples: 64\nbatch_sizes: [1, 4]\n")
    p = Params.from_yaml(f, dict([parse_override("seed=3")]))
    assert (p.calib_samples, p.batch_sizes, p.seed) == (64, [1, 4], 3)
    f.write_text("- not a mapping\n")
    with pytest.raises(ParamsError, match="mapping"):
        Params.from_yaml(f)
    with pytest.raises(ParamsError, match="does not exist"):
        Params.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ParamsError, match="name=value"):
        parse_override("seed")


def test_describe_documents_every_parameter():
    rows = describe()
    assert [r["name"] for r in rows] == list(Params.model_fields)
    assert all(r["help"] for r in rows)


@pytest.mark.parametrize("profile", [*sorted((ROOT / "params").glob("*.yaml")), ROOT / "tests" / "nbval.yaml"],
                         ids=lambda p: p.name)
def test_every_shipped_profile_is_valid(profile):
    if profile.name.startswith("prospectus-"):  # a prospectus's parameters, not a run's
        from scaleproof.prospectus.spec import load_spec

        load_spec(profile)
    else:
        Params.from_yaml(profile)
