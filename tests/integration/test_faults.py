"""Every failure path ends in a clear error: bad input exits 2 with one line naming the problem, never a
traceback (issue: "Every failure path ends in a clear error with nothing lost")."""

import pytest

from scaleproof import cli


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("bad, named", [
    (["--baseline-qps", "0"], "baseline_qps=0.0"),
    (["--engine-qps", "-5"], "engine_qps=-5.0"),
    (["--usd-per-hour", "nan"], "usd_per_hour=nan"),
    (["--engine-qps", "inf"], "engine_qps=inf"),
    (["--peak-qps", "0"], "peak_qps=0.0"),
])
def test_cost_refuses_zero_negative_and_non_finite_figures(capsys, bad, named):
    good = {"--baseline-qps": "100", "--engine-qps": "400", "--usd-per-hour": "2.5", "--peak-qps": "1000"}
    good.update(dict(zip(bad[::2], bad[1::2], strict=True)))
    code, out, err = run_cli(capsys, "cost", *[x for kv in good.items() for x in kv])
    assert code == 2 and out == "" and named in err and "must be positive, finite numbers" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cost_refuses_a_utilization_above_one(capsys):
    code, _, err = run_cli(capsys, "cost", "--baseline-qps", "100", "--engine-qps", "400", "--usd-per-hour", "2",
                           "--peak-qps", "1000", "--utilization", "1.5")
    assert code == 2 and "utilization 1.5 must lie in (0, 1]" in err


def test_a_set_value_that_is_not_yaml_is_one_line_naming_it(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--params", "params/smoke.yaml", "--set", "batch_sizes=[1, 8",
                           "--outputs", str(tmp_path))
    assert code == 2 and "--set 'batch_sizes=[1, 8': the value is not valid YAML" in err
    assert err.count("\n") == 1 and not any(tmp_path.iterdir()), "nothing may start"


def test_a_params_file_that_is_not_yaml_is_one_line_naming_it(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: zoo:digits-cnn\nbatch_sizes: [1, 8\nseed: 0\n")
    code, _, err = run_cli(capsys, "run", "--params", str(bad), "--outputs", str(tmp_path / "out"))
    assert code == 2 and f"{bad} is not valid YAML" in err and "line" in err and err.count("\n") == 1
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"model: \xff\xfe\n")
    code, _, err = run_cli(capsys, "run", "--params", str(binary), "--outputs", str(tmp_path / "out"))
    assert code == 2 and "is not UTF-8 text" in err



def test_a_machine_the_price_table_cannot_price_fails_before_any_stage(capsys, tmp_path):
    """Seen on an H200 (2026-11-26): five minutes of measurements, then 06_cost_report found no price
    row. The row is now looked up before the run claims its folder."""
    prices = tmp_path / "prices.csv"
    prices.write_text("id,accelerator,offer,usd_per_hour,source,as_of,confidence,matches\n"
                      "gpu-only,B300,a row for a device no test machine has,9.99,a test,2026-11,low,zz-no-such-device\n")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--params", "params/smoke.yaml", "--set", f"price_table={prices}",
                           "--outputs", str(out))
    assert code == 2 and "no price row matches device '" in err and "gpu-only" in err
    assert not out.exists() or not any(out.iterdir()), "no run folder: nothing was started"


def test_a_wrong_ray_address_fails_in_seconds_naming_it(tmp_path):
    """Ray itself retried a wrong --address for about 14 minutes; the fleet command now fails within seconds."""
    import subprocess
    import sys
    import time

    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "scaleproof.cli", "fleet", "--params", "params/smoke.yaml",
                           "--gpus", "T4", "--address", "127.0.0.1:9", "--outputs", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and time.monotonic() - t0 < 30
    assert "cannot reach a Ray cluster at --address 127.0.0.1:9 within 5 s" in done.stderr
    assert not any(tmp_path.iterdir()), "no fleet folder for a fleet that never started"


def test_an_address_that_does_not_resolve_fails_at_once():
    import time

    from scaleproof.errors import ParamsError
    from scaleproof.fleet import check_reachable

    t0 = time.monotonic()
    with pytest.raises(ParamsError, match=r"--address ray://no-such-host\.invalid:10001 within 2 s"):
        check_reachable("ray://no-such-host.invalid:10001", timeout_s=2)
    assert time.monotonic() - t0 < 5
    check_reachable("auto")  # Ray's own discovery: nothing to check here
