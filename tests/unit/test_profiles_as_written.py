"""Profiles as users write them: YAML floats without a dot or an exponent sign, checkpoints with extra keys, the
weights' origin taken from what was loaded, duplicate samples across the calibration and validation splits."""

import logging

import numpy as np
import pytest
import torch

from scaleproof.config import Params, parse_override
from scaleproof.datasets import Split, describe_data, duplicate_rows
from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.zoo import load_model, load_user_weights, state_sha256


@pytest.mark.parametrize("text", ["1.0e9", "1e9", "1E9", "1.0e+9", "1000000000"])
def test_daily_requests_written_as_users_write_it_is_a_number(tmp_path, text):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"daily_requests: {text}\nsla_p99_ms: 5e1\n")
    p = Params.from_yaml(profile)
    assert p.daily_requests == 1e9 and isinstance(p.daily_requests, float) and p.sla_p99_ms == 50.0


def test_overrides_read_exponents_as_numbers_and_names_stay_strings():
    assert parse_override("daily_requests=2.5e9") == ("daily_requests", 2.5e9)
    assert parse_override("model_version=v1e9") == ("model_version", "v1e9")
    assert parse_override("batch_sizes=[1, 8]") == ("batch_sizes", [1, 8])
    with pytest.raises(ParamsError, match="daily_requests"):  # what cannot be a number is still refused
        Params.parse({"daily_requests": "1.0e9x"})


def bert(pooler: bool):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return BertModel(cfg, add_pooling_layer=pooler).eval()


def test_a_checkpoint_with_extra_keys_loads_with_weights_ignore(tmp_path):
    from safetensors.torch import save_file

    full = bert(pooler=True)  # the checkpoint carries a pooler the served model drops
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    with pytest.raises(ArtifactError, match=r"unexpected \['pooler.dense.bias', 'pooler.dense.weight'\].*weights_ignore"):
        load_user_weights(bert(pooler=False), path)
    with pytest.raises(ArtifactError, match="pooler.dense.bias"):  # a pattern that covers only part is no licence
        load_user_weights(bert(pooler=False), path, strict=False, ignore=["pooler.dense.weight"])
    served = bert(pooler=False)
    torch.nn.init.zeros_(served.embeddings.word_embeddings.weight)
    origin, sha = load_user_weights(served, path, strict=False, ignore=["pooler.*"])
    assert "2 key(s) not loaded by weights_ignore: pooler.dense.bias, pooler.dense.weight" in origin and len(sha) == 64
    assert torch.equal(served.embeddings.word_embeddings.weight, full.embeddings.word_embeddings.weight)


def test_weights_ignore_needs_weights_strict_off():
    with pytest.raises(ParamsError, match="weights_ignore takes effect with weights_strict: false"):
        Params.parse({"weights_ignore": ["pooler.*"]})
    assert Params.parse({"weights_strict": False, "weights_ignore": ["pooler.*"]}).weights_ignore == ["pooler.*"]


def test_the_origin_of_a_factorys_weights_is_the_hash_of_what_it_returned():
    bundle = load_model("tests.user_models:tiny_convnet", [3, 16, 16])
    assert f"state sha256 {state_sha256(bundle.module.model)}" in bundle.weights
    assert "torch.manual_seed(0) was set before the call" in bundle.weights
    changed = bundle.module.model
    with torch.no_grad():
        next(changed.parameters()).add_(1.0)
    assert state_sha256(changed) not in bundle.weights  # other weights, another hash


def test_duplicate_rows_across_calibration_and_validation_are_counted_and_warned(caplog):
    rng = np.random.default_rng(0)
    calib = Split({"ids": rng.integers(0, 50, (40, 6)), "dense": rng.normal(size=(40, 3)).astype(np.float32)}, None)
    val_x = {k: v[:30].copy() for k, v in {"ids": rng.integers(0, 50, (30, 6)),
                                             "dense": rng.normal(size=(30, 3)).astype(np.float32)}.items()}
    for k in val_x:  # 7 validation samples copied from calibration
        val_x[k][[1, 4, 9, 10, 20, 21, 29]] = calib.x[k][[0, 3, 3, 39, 5, 6, 7]]
    val_x["dense"][20, 2] += 1e-3  # one input differs in one value: not a duplicate
    val = Split(val_x, None)
    assert duplicate_rows(calib, val) == 6
    with caplog.at_level(logging.WARNING, logger="scaleproof.datasets"):
        data = describe_data(Params(), {"calib": calib, "val": val}, "synthetic")
    assert data["val"]["rows_also_in_calib"] == 6
    assert "6 of 30 validation samples also occur in the calibration data" in caplog.text
    assert duplicate_rows(calib, Split({k: v[::-1].copy() for k, v in calib.x.items()}, None)) == 40
