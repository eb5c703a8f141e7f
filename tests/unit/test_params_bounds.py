"""Every numeric parameter finite and inside its documented range, refused before any work with the range named;
error messages quote a bounded prefix of what they were given; YAML alias bombs are refused before validation."""

import time

import pytest

from scaleproof import cli
from scaleproof.config import ELEMENT_RANGES, RANGES, Params, describe, parse_override
from scaleproof.errors import ParamsError
from tests import ROOT

SMOKE = ROOT / "params" / "smoke.yaml"


@pytest.mark.parametrize(("override", "says"), [
    ("min_time_s=.inf", "min_time_s: Input should be a finite number"),
    ("loadgen_min_duration_s=.nan", "loadgen_min_duration_s: Input should be a finite number"),
    ("seed=-1", "seed: -1 is outside its range 0..4,294,967,295"),
    ("min_time_s=1000000000.0", "min_time_s: 1000000000.0 is outside its range 0..3,600"),
    ("warmup=10000000", "warmup: 10000000 is outside its range 0..100,000"),
    ("price_usd_per_hour=1.0e+12", "price_usd_per_hour: 1000000000000.0 is outside its range 0..1,000,000"),
    ("growth=[1.0, .inf]", "growth.1: Input should be a finite number"),
    ("image_std=[0.2, 0.0, 0.2]", "image_std: has 0.0, outside the range 1e-06..1,000 of every element"),
])
def test_an_absurd_number_is_refused_naming_its_range(override, says):
    with pytest.raises(ParamsError) as e:
        Params.from_yaml(SMOKE, dict([parse_override(override)]))
    assert says in str(e.value)


def test_the_command_refuses_it_before_any_work(tmp_path, capsys):
    code = cli.main(["run", "--params", str(SMOKE), "--set", "min_time_s=.inf", "--outputs", str(tmp_path / "o")])
    assert code == 2 and "finite number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_every_range_is_documented_and_the_shipped_profiles_lie_inside():
    rows = {r["name"]: r for r in describe()}
    assert all("range" in rows[n] for n in [*RANGES, *ELEMENT_RANGES])
    for profile in ("smoke", "default"):
        Params.from_yaml(ROOT / "params" / f"{profile}.yaml")


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "defs:\n" + "\n".join("  " + x for x in lines) + f"\nmodel: *l{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    assert len(bomb.read_bytes()) < 600
    t0 = time.monotonic()
    with pytest.raises(ParamsError, match="aliases expand to more than 100,000 values"):
        Params.from_yaml(bomb)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ParamsError, match="aliases expand"):
        parse_override("model=&a [*a]")  # an alias of itself: endless when expanded


def test_a_huge_value_is_quoted_by_a_bounded_prefix():
    with pytest.raises(ParamsError) as e:
        Params.parse({"model": ["x" * 10_000] * 10_000})
    assert len(str(e.value)) < 400
    with pytest.raises(ParamsError) as e:
        parse_override("no equals sign " + "y" * 100_000)
    assert len(str(e.value)) < 200


def test_anchors_of_a_reasonable_size_still_load(tmp_path):
    f = tmp_path / "anchors.yaml"
    f.write_text("sizes: &s [1, 16]\nbatch_sizes: *s\n")
    with pytest.raises(ParamsError, match="sizes: unknown parameter"):
        Params.from_yaml(f)  # loaded (aliases fine), then validated as usual
